"""Issue 9, B5 and C12 against the real PostgreSQL.

B5: a dismissal whose target is not yet under the horizon (a transaction that began before
it is still open) is refused, naming that transaction; once it ends, the dismissal passes
over its events too, and counts them. C12: dismissing the same event twice says it was
already dismissed, by whom, when, and by which decision.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from eventstore.types import Cursor
from reactions_admin import errors
from reactions_admin.acts.dismissal.handler import dismiss_event_in_reaction
from subscribers.models import Bookmark
from tests.factories import append_events, operator, wedged_reaction
from tests.support import decisions, raw_connection, wait_until_visible

pytestmark = pytest.mark.django_db(transaction=True)

INSERT = """
INSERT INTO events (event_id, stream_id, stream_version, event_type, data, metadata)
VALUES (%s, %s, 1, 'OrderPlaced', '{}', '{}')
RETURNING transaction_id::text::bigint, position, pg_backend_pid()
"""


def open_transaction_with_an_event(session: psycopg.Connection[Any]) -> tuple[Cursor, int]:
    """Session A: BEGIN, insert an event, leave the transaction open. Its cursor and pid."""
    row = session.execute(INSERT, [uuid.uuid4(), f"slow-{uuid.uuid4()}"]).fetchone()
    assert row is not None
    return Cursor(row[0], row[1]), row[2]


def test_a_target_behind_an_open_transaction_is_refused_then_counted_once_it_commits() -> None:
    [before] = wait_until_visible(append_events(1, stream="orders-0"))
    actor = operator()
    with raw_connection(autocommit=False) as session_a:
        a_cursor, a_pid = open_transaction_with_an_event(session_a)
        [b_event] = append_events(1, stream="orders-b")  # session B: appends and commits
        assert b_event.cursor > a_cursor
        wedged_reaction("mailer", before, failing=b_event)

        with pytest.raises(errors.EventNotVisibleYet) as refused:
            dismiss_event_in_reaction("mailer", b_event.event_id, "poison", actor)

        assert (refused.value.status, refused.value.code) == (409, "event_not_visible_yet")
        assert f"pid {a_pid} " in refused.value.detail  # names session A's backend
        assert "Held back by" in refused.value.detail
        assert Bookmark.objects.get(pk="mailer").cursor == before.cursor
        assert decisions() == []
        session_a.commit()

    wait_until_visible([b_event])
    result = dismiss_event_in_reaction("mailer", b_event.event_id, "poison", actor)

    assert before.cursor < a_cursor <= result.cursor_after == b_event.cursor
    assert result.events_passed_over == 2  # A's event and B's: all that lies between
    [decision] = decisions()
    assert decision.data["inputs"]["events_passed_over"] == 2
    assert decision.data["inputs"]["handled_events_passed_over"] == 2


def test_a_transaction_begun_after_the_target_does_not_hold_it_back() -> None:
    events = wait_until_visible(append_events(3))
    wedged_reaction("mailer", events[0], failing=events[1])
    with raw_connection(autocommit=False) as later:
        open_transaction_with_an_event(later)  # a larger transaction id than every event's
        result = dismiss_event_in_reaction("mailer", events[2].event_id, "poison", operator())
        later.rollback()
    assert result.events_passed_over == 2


def test_dismissing_the_same_event_twice_says_who_dismissed_it_when_and_which_decision() -> None:
    events = wait_until_visible(append_events(3))
    wedged_reaction("mailer", events[0], failing=events[1])
    first = dismiss_event_in_reaction("mailer", events[1].event_id, "poison", operator("alice"))

    with pytest.raises(errors.EventAlreadyDismissed) as refused:
        dismiss_event_in_reaction("mailer", events[1].event_id, "again", operator("bob"))

    assert (refused.value.status, refused.value.code) == (409, "event_already_dismissed")
    [decision] = decisions()
    detail = refused.value.detail
    assert "already dismissed" in detail
    assert "alice" in detail
    assert str(first.decision_event_id) in detail
    assert decision.recorded_at.isoformat() in detail
    assert Bookmark.objects.get(pk="mailer").cursor == events[1].cursor


def test_a_dismissal_in_another_reaction_does_not_count_as_already_dismissed() -> None:
    events = wait_until_visible(append_events(3))
    wedged_reaction("mailer", events[1], failing=events[2])
    wedged_reaction("texter", events[0], failing=events[1])
    dismiss_event_in_reaction("texter", events[1].event_id, "poison", operator())
    with pytest.raises(errors.RewindRefused) as refused:
        dismiss_event_in_reaction("mailer", events[1].event_id, "poison", operator("bob"))
    assert refused.value.code == "rewind_refused"
