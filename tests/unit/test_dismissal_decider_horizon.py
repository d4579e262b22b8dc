"""The decider's later checks: an event not yet visible to every reader (issue 9, B5), an
event already dismissed (C12), a reason of invisible characters only (B8), and the order in
which all the checks are made."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from eventstore.types import START, Cursor
from reactions_admin import errors
from reactions_admin.acts.dismissal.decider import (
    DismissalAccepted,
    DismissalRejected,
    PriorDismissal,
    Rejection,
    decide_dismissal,
)
from reactions_admin.acts.reasons import MAX_REASON_LENGTH, has_visible_character

BOOKMARK = Cursor(100, 7)
AFTER = Cursor(101, 3)
PRIOR = PriorDismissal(
    decision_event_id=uuid.UUID("6a1f0a64-1d0e-4bd6-9b1e-8f6d3b8f0c11"),
    actor="alice",
    recorded_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
)


def rejection(decision: DismissalAccepted | DismissalRejected) -> Rejection:
    assert isinstance(decision, DismissalRejected), decision
    return decision.refusal


def test_an_event_not_yet_visible_is_refused_with_a_code_of_its_own() -> None:
    decision = decide_dismissal(BOOKMARK, AFTER, "poison", visible=False)
    assert rejection(decision) is Rejection.EVENT_NOT_VISIBLE_YET
    assert isinstance(decision, DismissalRejected)
    assert str(AFTER) in decision.detail
    error = errors.from_rejection(decision)
    assert (error.status, error.code) == (409, "event_not_visible_yet")


def test_a_visible_event_after_the_bookmark_is_accepted() -> None:
    assert isinstance(decide_dismissal(BOOKMARK, AFTER, "poison", visible=True), DismissalAccepted)


@pytest.mark.parametrize(
    ("reason", "event", "visible", "expected"),
    [
        # 1. the reason (blank, then too long) before anything else
        ("", START, False, Rejection.REASON_REQUIRED),
        ("\u200b", START, False, Rejection.REASON_REQUIRED),
        ("x" * (MAX_REASON_LENGTH + 1), START, False, Rejection.REASON_TOO_LONG),
        ("", AFTER, False, Rejection.REASON_REQUIRED),
        # 2. a rewind before visibility: an event at or before the bookmark is long visible
        ("rewind", BOOKMARK, False, Rejection.REWIND_REFUSED),
        ("rewind", START, False, Rejection.REWIND_REFUSED),
        # 3. visibility last
        ("poison", AFTER, False, Rejection.EVENT_NOT_VISIBLE_YET),
    ],
)
def test_the_checks_come_in_order(
    reason: str, event: Cursor, visible: bool, expected: Rejection
) -> None:
    assert rejection(decide_dismissal(BOOKMARK, event, reason, visible=visible)) is expected


def test_an_event_already_dismissed_says_by_whom_when_and_which_decision() -> None:
    decision = decide_dismissal(BOOKMARK, BOOKMARK, "again", visible=True, prior=PRIOR)
    assert rejection(decision) is Rejection.EVENT_ALREADY_DISMISSED
    assert isinstance(decision, DismissalRejected)
    assert "already dismissed" in decision.detail
    assert "alice" in decision.detail
    assert "2026-01-02T03:04:05+00:00" in decision.detail
    assert str(PRIOR.decision_event_id) in decision.detail
    error = errors.from_rejection(decision)
    assert (error.status, error.code) == (409, "event_already_dismissed")
    # A refinement of the rewind: whoever catches RewindRefused still catches it.
    assert isinstance(error, errors.RewindRefused)


def test_an_event_dismissed_before_and_passed_since_is_still_reported_as_dismissed() -> None:
    decision = decide_dismissal(AFTER, BOOKMARK, "again", visible=True, prior=PRIOR)
    assert rejection(decision) is Rejection.EVENT_ALREADY_DISMISSED


def test_a_prior_dismissal_does_not_refuse_an_event_after_the_bookmark() -> None:
    # The bookmark is before the event: nothing passed it (a decision from before a rebuild).
    decision = decide_dismissal(BOOKMARK, AFTER, "again", visible=True, prior=PRIOR)
    assert isinstance(decision, DismissalAccepted)


def test_a_reason_check_comes_before_the_already_dismissed_one() -> None:
    decision = decide_dismissal(BOOKMARK, BOOKMARK, " ", visible=True, prior=PRIOR)
    assert rejection(decision) is Rejection.REASON_REQUIRED


@pytest.mark.parametrize(
    "reason",
    [
        "\u200b",  # zero-width space (Cf)
        "\u200b\u200c\u200d\u2060\ufeff",  # zero-width (non-)joiners, word joiner, BOM
        "\u00ad",  # soft hyphen (Cf)
        "\u202e\u202d",  # bidi overrides (Cf)
        " \u200b \u3000\n",  # mixed with whitespace
        "\u0301\u0308",  # combining marks on nothing (Mn)
        "\ufe0f",  # a variation selector (Mn)
        "\x07\x1b",  # controls (Cc)
    ],
)
def test_a_reason_of_invisible_characters_only_is_required_to_say_something(reason: str) -> None:
    assert not has_visible_character(reason)
    assert rejection(decide_dismissal(BOOKMARK, AFTER, reason, visible=True)) is (
        Rejection.REASON_REQUIRED
    )


@pytest.mark.parametrize("reason", ["\u200bpoison", "😀", "é", "日本", "4", "!", "\u200b.\u200b"])
def test_one_visible_character_is_enough(reason: str) -> None:
    assert has_visible_character(reason)
    decision = decide_dismissal(BOOKMARK, AFTER, reason, visible=True)
    assert isinstance(decision, DismissalAccepted)
    assert decision.reason == reason.strip()
