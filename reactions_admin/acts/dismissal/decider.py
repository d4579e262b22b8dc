"""The dismissal decider: a pure function of (bookmark cursor, event cursor, reason, and what
the handler found out: is the event visible to every reader, was it dismissed before).

It imports nothing from Django. It returns a value — a ``DismissalAccepted``
the handler carries out, or a ``DismissalRejected`` the handler turns into an
error — and never raises.
"""

from __future__ import annotations

import bisect
import enum
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventstore.types import Cursor

#: The longest reason an operator may give (after trimming).
MAX_REASON_LENGTH = 2000

#: Unicode general categories whose characters show: letters, numbers, punctuation, symbols.
#: Separators (Z*), controls, format characters such as the zero-width space (C*) and
#: combining marks on nothing (M*) do not: a reason made only of them says nothing.
VISIBLE_CATEGORIES = frozenset("LNPS")

#: Unicode's Default_Ignorable_Code_Point ranges (DerivedCoreProperties.txt, as of 14.0,
#: this Python's Unicode version): a renderer shows them as nothing, whatever their
#: category. Most are format characters or marks, refused already; the Hangul fillers
#: (U+115F, U+1160, U+3164, U+FFA0) are letters by category, and a reason made of them
#: looked filled in while saying nothing.
DEFAULT_IGNORABLE: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
    (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)  # fmt: skip
_IGNORABLE_STARTS = [first for first, _ in DEFAULT_IGNORABLE]
#: Blank by design though neither ignorable nor a space: the Hangul fillers (listed
#: above too, named here because they are the ones found accepted) and the Braille
#: pattern with no dots, a symbol that prints as an empty cell.
BLANK_CHARACTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


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


#: The audit event of a dismissal: its ``context`` and ``choice``.
DISMISSAL_CONTEXT = "ReactionDismissal"
DISMISSAL_CHOICE = "EventDismissed"


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
            "cursor_before": _cursor(self.cursor_before),
            "cursor_after": _cursor(self.cursor_after),
            "events_passed_over": passed_over,
            "handled_events_passed_over": handled_passed_over,
        }


def _cursor(cursor: Cursor) -> dict[str, int]:
    return {"transaction_id": cursor.transaction_id, "position": cursor.position}


@dataclass(frozen=True)
class DismissalRejected:
    """The dismissal must not happen; ``detail`` says why in words an operator reads."""

    rejection: Rejection
    detail: str


Decision = DismissalAccepted | DismissalRejected


def is_visible_character(char: str) -> bool:
    """Whether ``char`` shows when printed: its Unicode category is in
    ``VISIBLE_CATEGORIES``, and it is neither default-ignorable nor a blank character."""
    if unicodedata.category(char)[0] not in VISIBLE_CATEGORIES or char in BLANK_CHARACTERS:
        return False
    code = ord(char)
    i = bisect.bisect_right(_IGNORABLE_STARTS, code) - 1
    return i < 0 or code > DEFAULT_IGNORABLE[i][1]


def has_visible_character(text: str) -> bool:
    """Whether ``text`` holds at least one character that shows."""
    return any(is_visible_character(char) for char in text)


def visible_character_class() -> str:
    """A regular-expression character class matching exactly the characters for which
    ``is_visible_character`` holds, in this Python's Unicode version (for the API schema)."""
    parts: list[str] = []
    start: int | None = None
    for code in range(0x110001):
        visible = code <= 0x10FFFF and is_visible_character(chr(code))
        if visible and start is None:
            start = code
        elif not visible and start is not None:
            last = code - 1
            parts.append(_escape(start) if last == start else f"{_escape(start)}-{_escape(last)}")
            start = None
    return "[" + "".join(parts) + "]"


def _escape(code: int) -> str:
    # Astral characters stand as themselves: ``\\U`` escapes are Python's alone, and a
    # JSON Schema validator (ECMA-262 dialect) or a generator translating the pattern
    # reads them otherwise, so the schema would admit reasons the handler refuses.
    return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)


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
    if not has_visible_character(reason):
        return DismissalRejected(Rejection.REASON_REQUIRED, "A reason is required to dismiss.")
    trimmed = reason.strip()
    if len(trimmed) > MAX_REASON_LENGTH:
        return DismissalRejected(
            Rejection.REASON_TOO_LONG,
            f"The reason is {len(trimmed)} characters; at most {MAX_REASON_LENGTH} are allowed.",
        )
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
