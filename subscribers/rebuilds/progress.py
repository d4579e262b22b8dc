"""A rebuild's progress as every reading page shows it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventstore.decisions import DECISION_EVENT_TYPE
from eventstore.models import Event
from subscribers.json_form import attributes, iso
from subscribers.models import Rebuild
from subscribers.pace import eta_seconds
from subscribers.rebuilds.audit import REBUILD_STREAM
from subscribers.rebuilds.estimate import events_to_replay

#: The choice of the decision an operator's pause appends (``Choice.PAUSE`` of
#: ``reactions_admin.acts.rebuilds.decider``, which this engine does not import).
PAUSE_CHOICE = "RebuildPaused"


@dataclass(frozen=True)
class RebuildProgress:
    """Phase, events done of total, rate, ETA, and what it waits for."""

    projection: str
    phase: str
    phase_label: str
    events_done: int
    events_total: int
    #: Events per second over the recent batches (0 before the first).
    rate: float
    #: Seconds left at that rate (None when unknown or done).
    eta_seconds: float | None
    started_at: datetime
    started_by: str
    reason: str
    note: str
    last_error: str
    verification: dict[str, Any] | None
    kept_until: datetime | None
    #: While paused: who paused it, why and when (the pause's decision).
    paused_by: str = ""
    pause_reason: str = ""
    paused_at: datetime | None = None

    @property
    def remaining(self) -> int:
        return max(0, self.events_total - self.events_done)

    def as_payload(self) -> dict[str, Any]:
        """The JSON form (REST, MCP)."""
        return {
            **attributes(self, "projection", "phase", "phase_label", "events_done", "events_total"),
            "events_remaining": self.remaining,
            "rate_events_per_second": round(self.rate, 1),
            "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds),
            "started_at": self.started_at.isoformat(),
            **attributes(self, "started_by", "reason", "note", "last_error", "verification"),
            "kept_until": iso(self.kept_until),
            **attributes(self, "paused_by", "pause_reason"),
            "paused_at": iso(self.paused_at),
        }


def rebuild_progress(rebuild: Rebuild) -> RebuildProgress:
    """The progress of ``rebuild`` as last recorded by its worker; paused, also who paused
    it and why, and (paused before a worker counted them) the events it has to replay."""
    total = rebuild.events_total
    pause: dict[str, Any] = {}
    if rebuild.phase == Rebuild.Phase.PAUSED:
        pause = _pause(rebuild)
        if total == 0:
            total = rebuild.events_done + events_to_replay(
                rebuild.projection_name, after=rebuild.cursor
            )
    remaining = total - rebuild.events_done
    eta = eta_seconds(remaining, rebuild.rate) if rebuild.is_open else None
    if rebuild.phase in (Rebuild.Phase.READY, Rebuild.Phase.VERIFYING):
        eta = 0.0 if rebuild.phase == Rebuild.Phase.READY else eta
    return RebuildProgress(
        projection=rebuild.projection_name,
        phase=rebuild.phase,
        phase_label=rebuild.get_phase_display(),
        events_done=rebuild.events_done,
        events_total=max(total, rebuild.events_done),
        rate=rebuild.rate,
        eta_seconds=eta,
        started_at=rebuild.created_at,
        started_by=rebuild.started_by,
        reason=rebuild.reason,
        note=rebuild.note,
        last_error=rebuild.last_error,
        verification=rebuild.verification,
        kept_until=rebuild.kept_until if rebuild.kept_dropped_at is None else None,
        **pause,
    )


def _pause(rebuild: Rebuild) -> dict[str, Any]:
    """``paused_by``, ``pause_reason``, ``paused_at`` from the decision that paused
    ``rebuild`` (the last one: a rebuild resumed and paused again shows the second)."""
    decision = (
        Event.objects.filter(
            stream_id=REBUILD_STREAM,
            event_type=DECISION_EVENT_TYPE,
            data__choice=PAUSE_CHOICE,
            data__inputs__rebuild_id=rebuild.pk,
        )
        .order_by("-position")
        .first()
    )
    if decision is None:
        return {}
    actor = decision.data.get("actor") or {}
    return {
        "paused_by": str(actor.get("username") or actor.get("os_user") or ""),
        "pause_reason": str(decision.data.get("reason") or ""),
        "paused_at": decision.recorded_at,
    }
