"""The demo's reactions: slow (an LLM round trip per event), modelled on the seed's
``RunDebriefer`` and ``CautionDrafter``."""

from __future__ import annotations

from demo.llm import LLMClient, default_llm
from eventstore import NO_STREAM, NewEvent, RecordedEvent, StreamAppend
from eventstore.store import get_event_store


def _metadata(event: RecordedEvent, actor: str) -> dict[str, str]:
    return {
        "actor": actor,
        "causation_id": str(event.event_id),
        "correlation_id": str(event.data.get("run_id", "")),
    }


class RunDebriefer:
    """When a run ends, ask the LLM for a short debrief and record it (``DebriefWritten``).

    Stream-ordered: each run is a stream, so up to ``concurrency`` runs are debriefed at
    once, and a run whose debrief keeps failing parks only its own stream.
    """

    name = "demo.run_debriefer"
    event_types = ("RunCompleted", "RunFailed")
    ordering = "stream"
    concurrency = 8

    def __init__(self, llm: LLMClient | None = None) -> None:
        self._llm = llm

    def handle(self, event: RecordedEvent) -> list[StreamAppend]:
        run_id = str(event.data["run_id"])
        history = get_event_store().read_stream(event.stream_id)
        lines = [f"Run {run_id} by {event.data.get('agent', '?')} ended: {event.event_type}."]
        for past in history:
            detail = past.data.get("summary") or past.data.get("task") or past.data.get("message")
            lines.append(f"- {past.event_type}: {detail or ''}".rstrip())
        debrief = (self._llm or default_llm()).complete("\n".join(lines), max_tokens=200)
        written = NewEvent(
            "DebriefWritten",
            {"run_id": run_id, "agent": event.data.get("agent", "?"), "debrief": debrief},
            _metadata(event, self.name),
        )
        return [StreamAppend(f"debrief-{run_id}", [written], NO_STREAM)]


class CautionDrafter:
    """For each caution, draft the note an operator reads (``CautionNoteDrafted``).

    The prompt carries the caution's evidence excerpt; an excerpt too large for the
    model's context window fails every time — the demo's poison event. Global order (the
    default): the poison wedges it until an operator dismisses it.
    """

    name = "demo.caution_drafter"
    event_types = ("CautionRaised",)
    batch_size = 1

    def __init__(self, llm: LLMClient | None = None) -> None:
        self._llm = llm

    def handle(self, event: RecordedEvent) -> list[StreamAppend]:
        data = event.data
        prompt = (
            f"Draft a two-sentence note for the on-call operator about this {data.get('severity')}"
            f" caution raised by {data.get('agent')} in run {data.get('run_id')}:"
            f" {data.get('message')}\n\nEvidence:\n{data.get('excerpt', '')}"
        )
        note = (self._llm or default_llm()).complete(prompt, max_tokens=120)
        drafted = NewEvent(
            "CautionNoteDrafted",
            {"caution_id": str(event.event_id), "run_id": data.get("run_id"), "note": note},
            _metadata(event, self.name),
        )
        return [StreamAppend(f"caution-note-{event.event_id}", [drafted], NO_STREAM)]
