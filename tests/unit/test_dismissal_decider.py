"""The dismissal decider: every branch. Pure, no database."""

from __future__ import annotations

import pytest

from eventstore.types import START, Cursor
from reactions_admin.acts.dismissal.decider import (
    DismissalAccepted,
    DismissalRejected,
    Rejection,
    decide_dismissal,
)
from reactions_admin.acts.reasons import MAX_REASON_LENGTH

BOOKMARK = Cursor(100, 7)


def rejected(bookmark: Cursor, event: Cursor, reason: str) -> DismissalRejected:
    """The decider's answer for an event every reader sees, which must be a rejection."""
    decision = decide_dismissal(bookmark, event, reason, visible=True)
    assert isinstance(decision, DismissalRejected)
    return decision


def test_accepts_an_event_after_the_bookmark_and_moves_to_it() -> None:
    decision = decide_dismissal(BOOKMARK, Cursor(100, 8), "poison payload", visible=True)
    assert decision == DismissalAccepted(BOOKMARK, Cursor(100, 8), "poison payload")


def test_a_later_transaction_with_a_smaller_position_is_after() -> None:
    # Lexicographic order: the transaction id decides first.
    decision = decide_dismissal(BOOKMARK, Cursor(101, 3), "late commit", visible=True)
    assert isinstance(decision, DismissalAccepted)
    assert decision.cursor_after == Cursor(101, 3)


def test_accepts_from_the_start() -> None:
    assert isinstance(
        decide_dismissal(START, Cursor(1, 1), "first", visible=True), DismissalAccepted
    )


def test_the_reason_is_trimmed() -> None:
    decision = decide_dismissal(BOOKMARK, Cursor(200, 1), "  bad data \n", visible=True)
    assert isinstance(decision, DismissalAccepted)
    assert decision.reason == "bad data"


@pytest.mark.parametrize(
    "reason",
    [
        "",
        " ",
        "\t\n  ",
        "\u3000",
        # Letters by category that render as nothing (Hangul fillers), and Braille's blank.
        "\u3164",
        "\u115f\u1160",
        "\uffa0",
        " \u3164\u200b\u3164 ",
        "\u2800\u2800",
    ],
)
def test_a_blank_reason_is_rejected(reason: str) -> None:
    decision = rejected(BOOKMARK, Cursor(200, 1), reason)
    assert decision.refusal is Rejection.REASON_REQUIRED
    assert decision.refusal.value == "reason_required"


def test_a_filler_beside_a_visible_character_is_accepted() -> None:
    decision = decide_dismissal(BOOKMARK, Cursor(200, 1), "\u3164 OPS-12", visible=True)
    assert isinstance(decision, DismissalAccepted)


def test_a_reason_of_the_maximum_length_is_accepted() -> None:
    decision = decide_dismissal(BOOKMARK, Cursor(200, 1), "x" * MAX_REASON_LENGTH, visible=True)
    assert isinstance(decision, DismissalAccepted)


def test_a_reason_over_the_maximum_is_rejected() -> None:
    decision = rejected(BOOKMARK, Cursor(200, 1), "x" * (MAX_REASON_LENGTH + 1))
    assert decision.refusal is Rejection.REASON_TOO_LONG
    assert str(MAX_REASON_LENGTH) in decision.detail


def test_the_event_at_the_bookmark_is_refused() -> None:
    decision = rejected(BOOKMARK, BOOKMARK, "again")
    assert decision.refusal is Rejection.REWIND_REFUSED


@pytest.mark.parametrize("event", [Cursor(100, 6), Cursor(99, 500), START])
def test_an_event_before_the_bookmark_is_refused(event: Cursor) -> None:
    decision = rejected(BOOKMARK, event, "rewind")
    assert decision.refusal is Rejection.REWIND_REFUSED
    assert str(BOOKMARK) in decision.detail


def test_a_blank_reason_is_reported_before_a_rewind() -> None:
    decision = rejected(BOOKMARK, START, "")
    assert decision.refusal is Rejection.REASON_REQUIRED


def test_a_too_long_reason_is_reported_before_a_rewind() -> None:
    decision = rejected(BOOKMARK, START, "x" * (MAX_REASON_LENGTH + 1))
    assert decision.refusal is Rejection.REASON_TOO_LONG


def test_the_decider_imports_nothing_from_django() -> None:
    import ast
    from pathlib import Path

    import reactions_admin.acts.dismissal.decider as module

    tree = ast.parse(Path(module.__file__).read_text())
    imported = {
        alias.name if isinstance(node, ast.Import) else (node.module or "")
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not any(name.startswith("django") for name in imported)
