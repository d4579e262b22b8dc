"""The demo's projections: fast, read-model writes only, inside the worker's transaction.

Two ways of writing one are shown: the unit of work (``apply_rows``: ``RunBoard``,
``AgentStatsProjection``) and plain per-event ORM calls (``apply``: ``CautionLog``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from demo.models import AgentStats, Caution, Run
from eventstore.types import RecordedEvent
from subscribers.rows import Rows

RUN_EVENTS = ("RunStarted", "StepRecorded", "RunCompleted", "RunFailed", "CautionRaised")


def _at(event: RecordedEvent) -> datetime:
    raw = event.data.get("at")
    return datetime.fromisoformat(raw) if isinstance(raw, str) else event.recorded_at


class RunBoard:
    """One row per run: status, steps, tokens, cautions, outcome and the debrief.

    Uses the unit of work (``apply_rows``): the batch's runs are loaded in one query,
    folded in memory, and each is written once (see docs/projections.md).
    """

    name = "demo.run_board"
    models = (Run,)
    event_types = (*RUN_EVENTS, "DebriefWritten")
    batch_size = 200

    def apply_rows(self, events: list[RecordedEvent], rows: Rows) -> None:
        rows.load(Run, run_id={str(event.data["run_id"]) for event in events})
        for event in events:
            run = rows.get_or_new(
                Run,
                run_id=str(event.data["run_id"]),
                defaults={"agent": event.data.get("agent", "?")},
            )
            fold_run(run, event)


def fold_run(run: Run, event: RecordedEvent) -> None:
    """``event``'s effect on its run's row (in memory: whoever holds the row writes it)."""
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
    """Totals per agent: counters from rows that may not exist yet (the unit of work)."""

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

    def apply_rows(self, events: list[RecordedEvent], rows: Rows) -> None:
        rows.load(AgentStats, agent={_agent(event) for event in events})
        for event in events:
            stats = rows.get_or_new(AgentStats, agent=_agent(event))
            field = self._counter[event.event_type]
            setattr(stats, field, getattr(stats, field) + 1)


def _agent(event: RecordedEvent) -> str:
    return str(event.data.get("agent", "?"))


class CautionLog:
    """Every caution raised, and the operator note drafted for it.

    Written in the plain per-event ``apply`` style: the simplest way, and the slowest
    (several round trips per event); fine for a projection that sees few events.
    """

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
