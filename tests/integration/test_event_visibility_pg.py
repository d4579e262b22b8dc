"""``PostgresEventStore.is_visible``: an event is visible once its transaction and every
transaction that began before it have ended (the horizon), not merely once it committed."""

from __future__ import annotations

import uuid

import pytest

from eventstore.postgres import PostgresEventStore
from tests.factories import append_events
from tests.support import raw_connection, wait_until_visible

pytestmark = pytest.mark.django_db(transaction=True)

INSERT = """
INSERT INTO events (event_id, stream_id, stream_version, event_type, data, metadata)
VALUES (%s, %s, 1, 'OrderPlaced', '{}', '{}')
RETURNING transaction_id::text::bigint, position
"""


def test_an_event_committed_after_an_open_transaction_began_waits_for_it() -> None:
    store = PostgresEventStore()
    with raw_connection(autocommit=False) as slow:
        row = slow.execute(INSERT, [uuid.uuid4(), f"slow-{uuid.uuid4()}"]).fetchone()
        assert row is not None
        [fast] = append_events(1)  # commits, with a larger transaction id than the slow one
        assert fast.transaction_id > row[0]
        assert not store.is_visible(fast.cursor)
        slow.commit()
    wait_until_visible([fast])
    assert store.is_visible(fast.cursor)
