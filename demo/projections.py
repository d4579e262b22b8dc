"""The demo's projections: fast, read-model writes only, inside the worker's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import F

from demo.models import AgentStats, Caution, Run
from eventstore.types import RecordedEvent

RUN_EVENTS = ("RunStarted", "StepRecorded", "RunCompleted", "RunFailed", "CautionRaised")


def _at(event: RecordedEvent) -> datetime:
    raw = event.data.get("at")
    return datetime.fromisoformat(raw) if isinstance(raw, str) else event.recorded_at


class RunBoard:
    """One row per run: status, steps, tokens, cautions, outcome and the debrief.

    Uses ``apply_batch``: the batch's runs are loaded once, folded in memory and
    written back with one bulk upsert.
    """

    name = "demo.run_board"
    models = (Run,)
    event_types = (*RUN_EVENTS, "DebriefWritten")
    batch_size = 200

    _fields = (
        "agent", "task", "model_name", "status", "steps", "tokens", "cautions",
        "outcome", "debrief", "started_at", "finished_at",
    )  # fmt: skip

    def apply(self, event: RecordedEvent) -> None:
        self.apply_batch([event])

    def apply_batch(self, events: list[RecordedEvent]) -> None:
        ids = {str(event.data["run_id"]) for event in events}
        runs = {run.run_id: run for run in Run.objects.filter(run_id__in=ids)}
        for event in events:
            run_id = str(event.data["run_id"])
            run = runs.setdefault(run_id, Run(run_id=run_id, agent=event.data.get("agent", "?")))
            _fold(run, event)
        Run.objects.bulk_create(
            list(runs.values()),
            update_conflicts=True,
            unique_fields=["run_id"],
            update_fields=list(self._fields),
        )


def _fold(run: Run, event: RecordedEvent) -> None:
    data: dict[str, Any] = event.data
    kind = event.event_type
    if kind == "RunStarted":
        run.agent, run.task = data["agent"], data.get("task", "")
        run.model_name = data.get("model", "")
        run.started_at, run.status = _at(event), Run.Status.RUNNING
    elif kind == "StepRecorded":
        run.steps += 1
        run.tokens += int(data.get("tokens", 0))
    elif kind == "CautionRaised":
        run.cautions += 1
    elif kind == "RunCompleted":
        run.status, run.finished_at = Run.Status.COMPLETED, _at(event)
        run.outcome = data.get("outcome", "")
    elif kind == "RunFailed":
        run.status, run.finished_at = Run.Status.FAILED, _at(event)
        run.outcome = data.get("error", "")
    elif kind == "DebriefWritten":
        run.debrief = data.get("debrief", "")


class AgentStatsProjection:
    """Totals per agent, one counter update per event (the plain ``apply`` style)."""

    name = "demo.agent_stats"
    models = (AgentStats,)
    event_types = RUN_EVENTS

    _counter = {
        "RunStarted": "runs_started",
        "RunCompleted": "runs_completed",
        "RunFailed": "runs_failed",
        "StepRecorded": "steps",
        "CautionRaised": "cautions",
    }

    def apply(self, event: RecordedEvent) -> None:
        agent = str(event.data.get("agent", "?"))
        field = self._counter[event.event_type]
        AgentStats.objects.get_or_create(agent=agent)
        AgentStats.objects.filter(agent=agent).update(**{field: F(field) + 1})


class CautionLog:
    """Every caution raised, and the operator note drafted for it."""

    name = "demo.caution_log"
    models = (Caution,)
    event_types = ("CautionRaised", "CautionNoteDrafted")

    def apply(self, event: RecordedEvent) -> None:
        data = event.data
        if event.event_type == "CautionRaised":
            Caution.objects.update_or_create(
                caution_id=event.event_id,
                defaults={
                    "run_id": data["run_id"],
                    "agent": data.get("agent", "?"),
                    "severity": data.get("severity", "warning"),
                    "message": data.get("message", ""),
                    "raised_at": _at(event),
                },
            )
        else:
            Caution.objects.filter(caution_id=data["caution_id"]).update(note=data["note"])
