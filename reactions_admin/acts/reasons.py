"""The rule for an operator's reason, shared by every act's decider (and stated for REST
clients as ``doors/rest/schemas.py``'s ``REASON_PATTERN``).

Pure: no Django. A decider asks :func:`check_reason` first and returns its refusal as its
own (the codes ``reason_required`` and ``reason_too_long`` are the same in every act).
"""

from __future__ import annotations

import bisect
import unicodedata
from dataclasses import dataclass

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

REASON_REQUIRED = "reason_required"
REASON_TOO_LONG = "reason_too_long"


@dataclass(frozen=True)
class ReasonRefused:
    """Why a reason is refused: ``code`` is ``reason_required`` or ``reason_too_long``."""

    code: str
    detail: str


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
