"""The deciders of the acts on a stream-ordered reaction's parked streams: pure functions
of what the handler found (the intake point, the event, the stream's unfinished rows, the
reason) that return a value: an accepted act, which also builds its audit inputs, or a
``StreamRejected`` the handler turns into an error. They import nothing from Django.

A stream is *parked* when its head (its earliest unfinished row) ran out of attempts; the
rows behind the head wait. An operator may dismiss the head (the next row becomes the head
and runs), dismiss the whole stream, or retry the head now.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from typing import Any

from eventstore.types import Cursor
from reactions_admin.acts.reasons import ReasonRefused, check_reason
from reactions_admin.acts.refusal import Rejected


class StreamRefusal(enum.Enum):
    """Why an act on a stream is refused; the value is the stable error code."""

    REASON_REQUIRED = "reason_required"
    REASON_TOO_LONG = "reason_too_long"
    STREAM_NOT_PARKED = "stream_not_parked"
    NOT_STREAM_HEAD = "not_stream_head"
    EVENT_IN_FLIGHT = "event_in_flight"
    EVENT_ALREADY_HANDLED = "event_already_handled"
    EVENT_NOT_REACHED = "event_not_reached"
    EVENT_TYPE_NOT_HANDLED = "event_type_not_handled"


@dataclass(frozen=True)
class StreamRejected(Rejected[StreamRefusal]):
    """The act must not happen; ``detail`` says why in words an operator reads."""


@dataclass(frozen=True)
class WorkItem:
    """One unfinished row of a stream-ordered reaction, as the handler read it (locked)."""

    event_id: uuid.UUID
    event_type: str
    stream_id: str
    cursor: Cursor
    attempts: int
    parked: bool
    #: A worker holds a live lease on it: ``handle`` is running.
    in_flight: bool


@dataclass(frozen=True)
class TargetEvent:
    """The event an operator named, as the event store holds it."""

    event_id: uuid.UUID
    event_type: str
    stream_id: str
    cursor: Cursor


@dataclass(frozen=True)
class EventsDismissed:
    """Delete these rows (a parked head, or a whole parked stream) and record one
    ``EventDismissed`` decision per event, in one transaction."""

    reaction: str
    stream_id: str
    items: tuple[WorkItem, ...]
    reason: str
    #: True when the whole stream is dismissed (the head and every event behind it).
    whole_stream: bool = False

    def inputs(self, item: WorkItem) -> dict[str, Any]:
        """The audit inputs of the decision dismissing ``item``: it passes over exactly
        that event (the intake point does not move), so its cursor is both before and after."""
        return {
            "reaction": self.reaction,
            "ordering": "stream",
            "stream_id": self.stream_id,
            "event_id": str(item.event_id),
            "event_type": item.event_type,
            "cursor_before": item.cursor._asdict(),
            "cursor_after": item.cursor._asdict(),
            "events_passed_over": 1,
            "handled_events_passed_over": 1,
            "attempts": item.attempts,
            "whole_stream": self.whole_stream,
            "stream_events_dismissed": len(self.items),
        }


@dataclass(frozen=True)
class StreamRetried:
    """Un-park the stream's head: it runs again now, with its attempt count kept (one more
    failure parks it again at once); the events behind it follow in order."""

    reaction: str
    head: WorkItem
    waiting: int
    reason: str

    def inputs(self) -> dict[str, Any]:
        """The audit inputs of the retry decision."""
        return {
            "reaction": self.reaction,
            "ordering": "stream",
            "stream_id": self.head.stream_id,
            "event_id": str(self.head.event_id),
            "event_type": self.head.event_type,
            "cursor": self.head.cursor._asdict(),
            "attempts": self.head.attempts,
            "waiting_behind": self.waiting,
        }


def decide_reason(reason: str, *, required: bool = True) -> str | StreamRejected:
    """The trimmed reason (``check_reason``), or its refusal as the stream acts' own."""
    checked = check_reason(reason, "dismiss", required=required)
    if isinstance(checked, ReasonRefused):
        return StreamRejected(StreamRefusal(checked.code), checked.detail)
    return checked


def decide_head_dismissal(
    reaction: str,
    intake_point: Cursor,
    event: TargetEvent,
    handled_types: tuple[str, ...] | None,
    stream: list[WorkItem],
    reason: str,
) -> EventsDismissed | StreamRejected:
    """Whether ``event`` may be dismissed: only the head of a parked stream may.

    ``stream`` is every unfinished row of the event's stream, head first. Checked in
    order: a type the reaction does not handle; no row (past the intake point: not
    reached; else already handled); running now; its stream not parked; not the head.
    """
    if handled_types is not None and event.event_type not in handled_types:
        return StreamRejected(
            StreamRefusal.EVENT_TYPE_NOT_HANDLED,
            f"{reaction} does not handle events of type {event.event_type!r} "
            f"(it handles {', '.join(handled_types) or 'none'}): it never takes them in.",
        )
    row = next((item for item in stream if item.event_id == event.event_id), None)
    if row is None:
        if event.cursor > intake_point:
            return StreamRejected(
                StreamRefusal.EVENT_NOT_REACHED,
                f"The event at {event.cursor} lies past the intake point {intake_point} of "
                f"{reaction}: it has not been taken in yet, so it cannot be parked.",
            )
        return StreamRejected(
            StreamRefusal.EVENT_ALREADY_HANDLED,
            f"{reaction} has already finished the event at {event.cursor} (handled, or "
            "dismissed before): it is not waiting in any stream.",
        )
    if row.in_flight:
        return StreamRejected(
            StreamRefusal.EVENT_IN_FLIGHT,
            f"A worker is handling the event at {event.cursor} right now; wait for its outcome.",
        )
    if not any(item.parked for item in stream):
        return StreamRejected(
            StreamRefusal.STREAM_NOT_PARKED,
            f"Stream {event.stream_id!r} is not parked for {reaction}: its events are "
            "still being handled (pending, or retrying with backoff).",
        )
    head = stream[0]
    if head.event_id != event.event_id:
        return StreamRejected(
            StreamRefusal.NOT_STREAM_HEAD,
            f"The event waits behind the head of parked stream {event.stream_id!r} "
            f"(event {head.event_id}); dismiss the head, or the whole stream.",
        )
    return EventsDismissed(reaction, event.stream_id, (row,), reason)


def decide_stream_dismissal(
    reaction: str, stream_id: str, stream: list[WorkItem], reason: str
) -> EventsDismissed | StreamRejected:
    """Dismiss every unfinished event of ``stream_id`` (head first), only if it is parked."""
    if not any(item.parked for item in stream):
        return _not_parked(reaction, stream_id, stream)
    return EventsDismissed(reaction, stream_id, tuple(stream), reason, whole_stream=True)


def decide_stream_retry(
    reaction: str, stream_id: str, stream: list[WorkItem], reason: str
) -> StreamRetried | StreamRejected:
    """Retry the parked head of ``stream_id`` now (only if the stream is parked)."""
    if not stream or not stream[0].parked:
        return _not_parked(reaction, stream_id, stream)
    return StreamRetried(reaction, stream[0], len(stream) - 1, reason)


def _not_parked(reaction: str, stream_id: str, stream: list[WorkItem]) -> StreamRejected:
    state = "has no unfinished event" if not stream else "is not parked"
    return StreamRejected(
        StreamRefusal.STREAM_NOT_PARKED, f"Stream {stream_id!r} {state} for {reaction}."
    )
