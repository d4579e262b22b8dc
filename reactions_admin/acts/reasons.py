"""The rule for an operator's reason, shared by every act's decider (and stated for REST
clients as ``doors/rest/schemas.py``'s ``REASON_PATTERN``).

Pure: no Django. A decider asks :func:`check_reason` first and returns its refusal as its
own (the codes ``reason_required`` and ``reason_too_long`` are the same in every act).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

#: The longest reason an operator may give (after trimming).
MAX_REASON_LENGTH = 2000

#: Unicode general categories whose characters show: letters, numbers, punctuation, symbols.
#: Separators (Z*), controls, format characters such as the zero-width space (C*) and
#: combining marks on nothing (M*) do not: a reason made only of them says nothing.
VISIBLE_CATEGORIES = frozenset("LNPS")

REASON_REQUIRED = "reason_required"
REASON_TOO_LONG = "reason_too_long"


@dataclass(frozen=True)
class ReasonRefused:
    """Why a reason is refused: ``code`` is ``reason_required`` or ``reason_too_long``."""

    code: str
    detail: str


def is_visible_character(char: str) -> bool:
    """Whether ``char`` shows when printed (its Unicode category is in ``VISIBLE_CATEGORIES``)."""
    return unicodedata.category(char)[0] in VISIBLE_CATEGORIES


def has_visible_character(text: str) -> bool:
    """Whether ``text`` holds at least one character that shows."""
    return any(is_visible_character(char) for char in text)


def check_reason(reason: str, what: str, *, required: bool = True) -> str | ReasonRefused:
    """The trimmed reason, or why it is refused: no visible character (when ``required``;
    an optional reason with none is ""), or longer than ``MAX_REASON_LENGTH`` after
    trimming. ``what`` completes "A reason is required to ..."."""
    if not has_visible_character(reason):
        if required:
            return ReasonRefused(REASON_REQUIRED, f"A reason is required to {what}.")
        return ""
    trimmed = reason.strip()
    if len(trimmed) > MAX_REASON_LENGTH:
        return ReasonRefused(
            REASON_TOO_LONG,
            f"The reason is {len(trimmed)} characters; at most {MAX_REASON_LENGTH} are allowed.",
        )
    return trimmed


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
