"""Hypothesis: the dismissal decider's validation cascade holds for any cursors and reasons."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from eventstore.types import Cursor
from reactions_admin.acts.dismissal.decider import (
    DismissalAccepted,
    DismissalRejected,
    Rejection,
    decide_dismissal,
)
from reactions_admin.acts.reasons import MAX_REASON_LENGTH, has_visible_character
from reactions_admin.errors import from_rejection

cursors = st.builds(
    Cursor,
    st.integers(min_value=0, max_value=2**63 - 1),
    st.integers(min_value=0, max_value=2**63 - 1),
)
blank = st.text(alphabet=st.sampled_from(" \t\n\r\x0b\x0c\u00a0\u2003\u3000"), max_size=50)
meaningful = st.text(min_size=1, max_size=MAX_REASON_LENGTH).filter(
    lambda text: has_visible_character(text) and len(text.strip()) <= MAX_REASON_LENGTH
)


def assert_refused(
    bookmark: Cursor, event: Cursor, reason: str, rejection: Rejection, status: int
) -> None:
    """The decider refuses with ``rejection``, which the doors answer with ``status``."""
    decision = decide_dismissal(bookmark, event, reason, visible=True)
    assert isinstance(decision, DismissalRejected)
    assert decision.refusal is rejection
    assert from_rejection(decision).status == status


@given(bookmark=cursors, event=cursors, reason=blank)
def test_a_blank_reason_is_a_400_whatever_the_cursors(bookmark, event, reason) -> None:
    assert_refused(bookmark, event, reason, Rejection.REASON_REQUIRED, 400)


@given(bookmark=cursors, event=cursors, reason=meaningful)
def test_an_event_not_after_the_bookmark_is_a_409(bookmark, event, reason) -> None:
    earlier, later = sorted((bookmark, event))
    assert_refused(later, earlier, reason, Rejection.REWIND_REFUSED, 409)


@given(bookmark=cursors, event=cursors, reason=meaningful)
def test_otherwise_accepted_and_the_new_cursor_is_the_events(bookmark, event, reason) -> None:
    decision = decide_dismissal(bookmark, event, reason, visible=True)
    if event > bookmark:
        assert isinstance(decision, DismissalAccepted)
        assert decision.cursor_after == event
        assert decision.cursor_before == bookmark
        assert decision.reason == reason.strip()
    else:
        assert isinstance(decision, DismissalRejected)
        assert decision.refusal is Rejection.REWIND_REFUSED


@given(bookmark=cursors, event=cursors, reason=st.text(max_size=MAX_REASON_LENGTH + 50))
def test_every_outcome_is_accepted_or_a_typed_rejection(bookmark, event, reason) -> None:
    decision = decide_dismissal(bookmark, event, reason, visible=True)
    if isinstance(decision, DismissalAccepted):
        assert decision.cursor_after > decision.cursor_before
        assert 0 < len(decision.reason) <= MAX_REASON_LENGTH
    else:
        error = from_rejection(decision)
        assert error.code == decision.refusal.value
        assert error.status in (400, 409)
