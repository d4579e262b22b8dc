"""The dismissal decider: a pure function of (bookmark cursor, event cursor, reason).

It imports nothing from Django. It returns a value — a ``DismissalAccepted``
the handler carries out, or a ``DismissalRejected`` the handler turns into an
error — and never raises.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from eventstore.types import Cursor

#: The longest reason an operator may give (after trimming).
MAX_REASON_LENGTH = 2000


class Rejection(enum.Enum):
    """Why a dismissal is refused; the value is the stable error code."""

    REASON_REQUIRED = "reason_required"
    REASON_TOO_LONG = "reason_too_long"
    REWIND_REFUSED = "rewind_refused"


@dataclass(frozen=True)
class DismissalAccepted:
    """Move the bookmark from ``cursor_before`` to ``cursor_after`` (the dismissed event)."""

    cursor_before: Cursor
    cursor_after: Cursor
    reason: str


@dataclass(frozen=True)
class DismissalRejected:
    """The dismissal must not happen; ``detail`` says why in words an operator reads."""

    rejection: Rejection
    detail: str


Decision = DismissalAccepted | DismissalRejected


def decide_dismissal(bookmark: Cursor, event: Cursor, reason: str) -> Decision:
    """Decide whether the event at ``event`` may be dismissed by a bookmark at ``bookmark``.

    The reason is checked first (empty or whitespace, then too long), then the
    order: the event must lie strictly after the bookmark in ``(transaction_id,
    position)`` order — a dismissal never moves a bookmark backward or in place.
    """
    trimmed = reason.strip()
    if not trimmed:
        return DismissalRejected(Rejection.REASON_REQUIRED, "A reason is required to dismiss.")
    if len(trimmed) > MAX_REASON_LENGTH:
        return DismissalRejected(
            Rejection.REASON_TOO_LONG,
            f"The reason is {len(trimmed)} characters; at most {MAX_REASON_LENGTH} are allowed.",
        )
    if not event > bookmark:
        return DismissalRejected(
            Rejection.REWIND_REFUSED,
            f"The event at {event} is not after the bookmark at {bookmark}: "
            "a dismissal only moves a bookmark forward.",
        )
    return DismissalAccepted(cursor_before=bookmark, cursor_after=event, reason=trimmed)
