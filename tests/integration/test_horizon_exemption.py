"""The horizon's one exception: a transaction exempted as its first act (a rebuild's
batch) holds no reader back, and can append no event; every other transaction that
holds an xid still holds the horizon, so an event it commits late is never passed over."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from django.db import connection, transaction

from eventstore.horizon import exempt_from_horizon, horizon_holders
from eventstore.postgres import PostgresEventStore
from eventstore.types import START
from subscribers.registry import build_registry
from subscribers.worker import Worker
from tests.factories import append
from tests.subscribers import applied
from tests.support import bookmark, raw_connection
from tests.workers import drain

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("applied_table")]

INSERT = (
    "INSERT INTO events (event_id, stream_id, stream_version, event_type, data, metadata)"
    " VALUES (%s, %s, 1, 'Wanted', '{}', '{}')"
)
DEFERRABLE = "SET TRANSACTION DEFERRABLE"
EXEMPT = "SELECT eventdesk_exempt_from_horizon()"
#: Gives the open transaction its xid, like a rebuild batch's first write.
TAKE_XID = "SELECT pg_current_xact_id()"


def recorder() -> Any:
    return build_registry(["tests.subscribers.RecordingProjection"])


def exempt_with_xid(conn: psycopg.Connection[Any]) -> int:
    conn.execute(DEFERRABLE)
    conn.execute(EXEMPT)
    row = conn.execute(TAKE_XID + "::text::bigint").fetchone()
    assert row is not None
    return int(row[0])


def test_an_event_committed_while_an_exempt_transaction_is_open_reaches_the_projection() -> None:
    subs = recorder()
    with raw_connection(autocommit=False) as rebuild_batch:
        xid = exempt_with_xid(rebuild_batch)
        fast = append("fast", "Wanted")
        assert fast[0].transaction_id > xid
        # Without the exception the batch holds the horizon: this never ends.
        drain(subs, lambda: bookmark("test.recorder").cursor == fast[0].cursor)
        assert PostgresEventStore().is_visible(fast[0].cursor)
        # Nor does the console name it as the transaction holding readers back.
        pid = rebuild_batch.info.backend_pid
        assert not [h for h in horizon_holders(min_age_seconds=0) if h.pid == pid]
        rebuild_batch.commit()
    assert [row[0] for row in applied("test.recorder")] == [fast[0].event_id]


def test_a_transaction_not_exempted_still_holds_the_horizon_behind_an_exempt_one() -> None:
    """Exempt first (lowest xid), then a slow appender, then a fast one: the reader stops
    before the slow one's event, and takes it first once it commits."""
    subs = recorder()
    with (
        raw_connection(autocommit=False) as rebuild_batch,
        raw_connection(autocommit=False) as slow,
    ):
        exempt_with_xid(rebuild_batch)
        slow_id = uuid.uuid4()
        slow.execute(INSERT, [slow_id, f"slow-{slow_id}"])
        fast = append("fast", "Wanted")
        for _ in range(3):
            Worker(subs).run_once()
        assert applied("test.recorder") == []
        assert bookmark("test.recorder").cursor == START
        assert not PostgresEventStore().is_visible(fast[0].cursor)
        slow.commit()
        drain(subs, lambda: len(applied("test.recorder")) == 2)
        rebuild_batch.commit()
    assert [row[0] for row in applied("test.recorder")] == [slow_id, fast[0].event_id]


def test_an_exempt_transaction_cannot_append() -> None:
    with raw_connection(autocommit=False) as conn:
        conn.execute(DEFERRABLE)
        conn.execute(EXEMPT)
        with pytest.raises(psycopg.errors.RestrictViolation, match="cannot append events"):
            conn.execute(INSERT, [uuid.uuid4(), "refused"])
        conn.rollback()
    with transaction.atomic():
        exempt_from_horizon()
        with pytest.raises(Exception, match="cannot append events"):
            append("refused-too", "Wanted")
    assert PostgresEventStore().head() == START


def test_a_transaction_with_an_xid_cannot_be_exempted() -> None:
    with raw_connection(autocommit=False) as conn:
        conn.execute(DEFERRABLE)
        conn.execute(TAKE_XID)
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="before it has"):
            conn.execute(EXEMPT)
        conn.rollback()


def test_the_exemption_holds_to_the_end_of_the_transaction() -> None:
    """What the trigger's cheap test rests on: DEFERRABLE comes first, and PostgreSQL
    refuses to take it back after a query, in a savepoint too."""
    with raw_connection(autocommit=False) as conn:
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="DEFERRABLE"):
            conn.execute(EXEMPT)
        conn.rollback()
        conn.execute(DEFERRABLE)
        conn.execute(EXEMPT)
        with pytest.raises(psycopg.errors.ActiveSqlTransaction, match="before any query"):
            conn.execute("SET TRANSACTION NOT DEFERRABLE")
        conn.rollback()
        conn.execute(DEFERRABLE)
        conn.execute(EXEMPT)
        conn.execute("SAVEPOINT s")
        with pytest.raises(psycopg.errors.ActiveSqlTransaction, match="subtransaction"):
            conn.execute("SET TRANSACTION NOT DEFERRABLE")
        conn.execute("ROLLBACK TO SAVEPOINT s")
        with pytest.raises(psycopg.errors.RestrictViolation, match="cannot append events"):
            conn.execute(INSERT, [uuid.uuid4(), "refused"])
        conn.rollback()


def test_only_a_transactions_first_act_is_exempted() -> None:
    """Python refuses outside a transaction and inside a savepoint (rolling it back would
    end the exemption while the transaction, and its xid, go on)."""
    with pytest.raises(RuntimeError, match="outermost"):
        exempt_from_horizon()
    with (
        transaction.atomic(),
        transaction.atomic(),
        pytest.raises(RuntimeError, match="outermost"),
    ):
        exempt_from_horizon()
    with transaction.atomic():
        exempt_from_horizon()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                " AND classid = 1162119258 AND objid = 1 AND pid = pg_backend_pid()"
            )
            assert cursor.fetchone() == (1,)
