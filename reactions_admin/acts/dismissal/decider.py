"""The dismissal decider: a pure function of (bookmark cursor, event cursor, reason, and what
the handler found out: is the event visible to every reader, was it dismissed before).

It imports nothing from Django. It returns a value — a ``DismissalAccepted``
the handler carries out, or a ``DismissalRejected`` the handler turns into an
error — and never raises.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventstore.types import Cursor
from reactions_admin.acts.reasons import ReasonRefused, check_reason
from reactions_admin.acts.refusal import Rejected
from reactions_admin.acts.result import FieldsPayload


class Rejection(enum.Enum):
    """Why a dismissal is refused; the value is the stable error code."""

    REASON_REQUIRED = "reason_required"
    REASON_TOO_LONG = "reason_too_long"
    REWIND_REFUSED = "rewind_refused"
    EVENT_ALREADY_DISMISSED = "event_already_dismissed"
    EVENT_NOT_VISIBLE_YET = "event_not_visible_yet"


@dataclass(frozen=True)
class PriorDismissal:
    """A decision that already dismissed the same event in the same reaction."""

    decision_event_id: uuid.UUID
    actor: str
    recorded_at: datetime


#: The audit event of a dismissal: its ``context`` and ``choice``, and the stream every
#: dismissal is appended to (one audit trail, in order).
DISMISSAL_CONTEXT = "ReactionDismissal"
DISMISSAL_CHOICE = "EventDismissed"
DECISION_STREAM = "decisions-reaction-dismissal"


@dataclass(frozen=True)
class DismissalAccepted:
    """Move the bookmark from ``cursor_before`` to ``cursor_after`` (the dismissed event)."""

    cursor_before: Cursor
    cursor_after: Cursor
    reason: str

    def inputs(
        self,
        *,
        reaction: str,
        event_id: uuid.UUID,
        event_type: str,
        passed_over: int,
        handled_passed_over: int,
    ) -> dict[str, Any]:
        """The audit event's inputs: what was dismissed where, the cursors, and what the
        move passes over (counted by the handler under the horizon)."""
        return {
            "reaction": reaction,
            "event_id": str(event_id),
            "event_type": event_type,
            "cursor_before": self.cursor_before._asdict(),
            "cursor_after": self.cursor_after._asdict(),
            "events_passed_over": passed_over,
            "handled_events_passed_over": handled_passed_over,
        }


@dataclass(frozen=True)
class DismissalRejected(Rejected[Rejection]):
    """The dismissal must not happen; ``detail`` says why in words an operator reads."""


Decision = DismissalAccepted | DismissalRejected


@dataclass(frozen=True)
class DismissalResult(FieldsPayload):
    """What a dismissal did (the handler's answer to every door)."""

    decision_event_id: uuid.UUID
    subscriber_name: str
    event_id: uuid.UUID
    cursor_before: Cursor
    cursor_after: Cursor
    #: Every event in ``(cursor_before, cursor_after]``, whatever its type.
    events_passed_over: int
    #: Those of them the reaction would have handled (its ``event_types``; all when it has none).
    handled_events_passed_over: int
    #: "global" (the bookmark moved) or "stream" (a parked head's row was deleted).
    ordering: str = "global"
    #: In a stream-ordered reaction: the stream the dismissed event was the head of.
    stream_id: str | None = None

    def passed_over_text(self) -> str:
        """The counts in words: "8 event(s), 2 of them of types the reaction handles"."""
        text = f"{self.events_passed_over} event(s)"
        if self.handled_events_passed_over != self.events_passed_over:
            text += f", {self.handled_events_passed_over} of them of types the reaction handles"
        return text

    def text(self) -> str:
        """What it did, for a person."""
        if self.stream_id is not None:
            return (
                f"Dismissed event {self.event_id}, the head of stream {self.stream_id!r} in "
                f"{self.subscriber_name}; the next event of the stream runs. "
                f"Decision {self.decision_event_id}."
            )
        return (
            f"Dismissed event {self.event_id} in {self.subscriber_name}: the bookmark moved "
            f"from {self.cursor_before} to {self.cursor_after}, {self.passed_over_text()} "
            f"passed over. Decision {self.decision_event_id}."
        )


def decide_dismissal(
    bookmark: Cursor,
    event: Cursor,
    reason: str,
    *,
    visible: bool,
    prior: PriorDismissal | None = None,
) -> Decision:
    """Decide whether the event at ``event`` may be dismissed by a bookmark at ``bookmark``.

    Checked in order: the reason (no visible character, then too long after trimming);
    the order — the event must lie strictly after the bookmark in ``(transaction_id,
    position)`` order, a dismissal never moves a bookmark backward or in place (when
    ``prior`` names a decision that already dismissed this very event, the refusal says
    so); then ``visible`` — every reader must already see the event (it is under the
    horizon), or the move could pass over an event of a transaction still in flight.
    """
    trimmed = check_reason(reason, "dismiss")
    if isinstance(trimmed, ReasonRefused):
        return DismissalRejected(Rejection(trimmed.code), trimmed.detail)
    if not event > bookmark:
        if prior is not None:
            return DismissalRejected(
                Rejection.EVENT_ALREADY_DISMISSED,
                f"The event at {event} was already dismissed in this reaction by "
                f"{prior.actor or 'an unnamed user'} at {prior.recorded_at.isoformat()} "
                f"(decision {prior.decision_event_id}); the bookmark is at {bookmark}.",
            )
        return DismissalRejected(
            Rejection.REWIND_REFUSED,
            f"The event at {event} is not after the bookmark at {bookmark}: "
            "a dismissal only moves a bookmark forward.",
        )
    if not visible:
        return DismissalRejected(
            Rejection.EVENT_NOT_VISIBLE_YET,
            f"The event at {event} is not yet visible to every reader: a transaction that "
            "began before it is still open, and dismissing now could pass over its events "
            "unseen. Try again once it has ended.",
        )
    return DismissalAccepted(cursor_before=bookmark, cursor_after=event, reason=trimmed)
