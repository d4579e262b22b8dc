"""The rebuild engine on real PostgreSQL: copy, build, verify, swap, roll back, cancel."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from psycopg.types.json import Jsonb

import subscribers.rebuilds.steps as steps
from eventstore import NewEvent
from eventstore.postgres import PostgresEventStore
from subscribers.models import Bookmark, Rebuild
from subscribers.rebuilds import (
    RebuildRefused,
    cancel_rebuild,
    current_rebuild,
    estimate_rebuild,
    rebuild_progress,
    roll_back_rebuild,
    start_rebuild,
    swap_rebuild,
)
from subscribers.rebuilds.definition import describe, differences, secondary_indexes
from subscribers.rebuilds.runner import RebuildRunner, run_rebuilds_once
from subscribers.registry import SubscriberRegistry, build_registry
from tests.factories import append_to
from tests.rebuilds import RbEntry, RbTotal, Totals, rows
from tests.support import raw_connection, wait_for
from tests.workers import drain, running_worker

pytestmark = pytest.mark.usefixtures("rebuild_tables")


def added(count: int, stream: str = "acct-1", start: int = 0) -> None:
    append_to(stream, [NewEvent("Added", {"key": f"k{(start + i) % 7}", "amount": start + i})
                       for i in range(count)])  # fmt: skip


def live_caught_up(registry: SubscriberRegistry, name: str) -> None:

    head = PostgresEventStore().head()
    drain(registry, lambda: Bookmark.objects.get(subscriber_name=name).cursor >= head)


def start(name: str, **kwargs: Any) -> Rebuild:
    with transaction.atomic():
        return start_rebuild(name, reason="test", started_by=None, **kwargs)


def test_a_rebuild_replays_verifies_swaps_and_rolls_back() -> None:
    registry = build_registry([Totals()])
    added(60)
    live_caught_up(registry, Totals.name)
    before = rows(RbTotal)
    Totals.factor = 2  # the deploy: the fix doubles every amount
    rebuild = start(Totals.name, registry=registry)
    assert estimate_rebuild(Totals.name, registry).events == 60
    run_rebuilds_once(registry)
    rebuild.refresh_from_db()
    assert rebuild.phase == "ready", (rebuild.phase, rebuild.last_error)
    progress = rebuild_progress(rebuild)
    assert (progress.phase_label, progress.events_done, progress.events_total) == (
        "ready to swap",
        60,
        60,
    )
    assert progress.rate > 0
    estimate = estimate_rebuild(Totals.name, registry)
    assert estimate.rate == rebuild.rate  # the rate measured so far
    assert estimate.seconds is not None
    assert estimate.extra_bytes > 0
    diff = rebuild.verification
    assert diff is not None
    assert diff["problems"] == []
    totals = diff["tables"]["rb_totals"]
    assert totals["differing"] == 7
    assert totals["only_live"] == totals["only_new"] == 0
    sample = totals["samples"]["differing"][0]
    assert sample["changed"] == ["total"]
    entries = diff["tables"]["rb_entries"]
    assert entries["matched_by"] == ["event_id"]
    assert entries["natural_key"]
    assert entries["differing"] == 59  # the amount 0 doubles to 0

    added(5, start=60)  # arrive after the verification: the swap applies them
    live_caught_up(registry, Totals.name)
    old_tables = rows(RbTotal)
    with transaction.atomic(durable=True):
        result = swap_rebuild(Totals.name, registry=registry)
    assert result.events_applied == 5
    assert result.tables_locked_ms > 0
    # The row as the swap marked it (in the exchange's round trip, not through save()).
    swapped = Rebuild.objects.get(pk=rebuild.pk)
    assert swapped.phase == "swapped"
    assert swapped.cursor == result.position
    assert (swapped.swapped_transaction_id, swapped.swapped_position) == tuple(result.position)
    assert swapped.swapped_at == swapped.ended_at == swapped.phase_changed_at
    assert swapped.swapped_at == swapped.updated_at
    assert swapped.kept_until is not None
    assert swapped.kept_until > swapped.swapped_at
    assert (swapped.note, swapped.lease_owner, swapped.lease_expires_at) == ("", "", None)
    assert swapped.swapped_definitions is not None
    assert set(swapped.swapped_definitions) == {"rb_totals", "rb_entries"}
    # Django's migration state stays true: the live tables' definitions, names included,
    # are what they were before the swap.
    with connection.cursor() as cursor:
        for table in ("rb_totals", "rb_entries"):
            now = describe(cursor, "public", table, "public")
            assert differences(table, rebuild.definitions[table], now) == []
    live = Bookmark.objects.get(subscriber_name=Totals.name)
    assert live.cursor == result.position
    assert sum(r[2] for r in rows(RbTotal)) == 2 * sum(range(65))

    with transaction.atomic(durable=True):
        back = roll_back_rebuild(Totals.name)
    assert rows(RbTotal) == old_tables  # the old data, at the swap's position...
    assert back.position_after == result.position
    assert Bookmark.objects.get(subscriber_name=Totals.name).cursor == result.position
    added(3, start=65)  # ...and the live projection goes on from there, with its code
    live_caught_up(registry, Totals.name)
    assert sum(r[2] for r in rows(RbTotal)) == sum(range(60)) + 2 * sum(range(60, 68))
    assert rows(RbTotal) != before
    rebuild.refresh_from_db()
    assert rebuild.phase == "rolled_back"


def ready_rebuild(registry: SubscriberRegistry, count: int = 20) -> Rebuild:
    """A rebuild of Totals over ``count`` events, verified and ready to swap."""
    added(count)
    live_caught_up(registry, Totals.name)
    rebuild = start(Totals.name, registry=registry)
    run_rebuilds_once(registry)
    rebuild.refresh_from_db()
    assert rebuild.phase == "ready", (rebuild.phase, rebuild.last_error)
    return rebuild


def test_a_swap_reads_no_event_when_none_of_its_types_came_since_it_verified() -> None:
    registry = build_registry([Totals()])
    rebuild = ready_rebuild(registry)
    append_to("notes-1", [NewEvent("Noted", {"n": i}) for i in range(3)])  # not its type
    live_caught_up(registry, Totals.name)
    live = Bookmark.objects.get(subscriber_name=Totals.name).cursor
    assert live > rebuild.cursor  # the live bookmark passed over them
    prepared = "SELECT count(*) FROM pg_prepared_statements WHERE statement = 'SELECT $1::int'"
    with CaptureQueriesContext(connection) as queries, transaction.atomic(durable=True):
        connection.ensure_connection()
        connection.connection.execute("SELECT %s::int", [1], prepare=True)
        result = swap_rebuild(Totals.name, registry=registry)
        with connection.cursor() as cursor:
            cursor.execute(prepared)
            still_prepared = cursor.fetchone()[0]
    assert (result.events_applied, result.position) == (0, live)
    assert Rebuild.objects.get(pk=rebuild.pk).cursor == live
    assert Bookmark.objects.get(subscriber_name=Totals.name).cursor == live
    # After the lock, one statement: the exchange (no decision here: the act appends it);
    # no read of events, and no DEALLOCATE ALL of psycopg's after the exchange's DDL (the
    # session's prepared statement is still there, one round trip later).
    sent = [q["sql"] for q in queries.captured_queries]
    locked = next(i for i, q in enumerate(sent) if "FOR UPDATE OF r, b" in q)
    window = sent[locked + 1 : sent.index(prepared)]
    assert [q.split()[0] for q in window] == ["LOCK"], window
    assert still_prepared == 1


def test_a_swap_applies_the_events_a_live_batch_passed_while_the_swap_waited_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An event of the projection, in flight when the swap's statement began, commits
    while the swap waits for the bookmark, which a live batch holds and then moves past
    the event. The statement's snapshot never saw the event; the swap applies it."""
    monkeypatch.setattr(steps, "SWAP_LOCK_TIMEOUT", "60s")  # the test decides when it ends
    registry = build_registry([Totals()])
    ready_rebuild(registry)
    outcome: list[Any] = []

    def swap() -> None:
        try:
            with transaction.atomic(durable=True):
                outcome.append(swap_rebuild(Totals.name, registry=registry))
        except BaseException as exc:  # surfaced by the assertions below
            outcome.append(exc)
        finally:
            connection.close()

    writer = raw_connection(autocommit=False)  # the event's transaction
    batch = raw_connection(autocommit=False)  # the live batch, holding the bookmark
    try:
        [tx, position] = writer.execute(
            "INSERT INTO events (event_id, stream_id, stream_version, event_type, data, metadata)"
            " VALUES (gen_random_uuid(), 'acct-1', 21, 'Added', %s, '{}')"
            " RETURNING transaction_id::text::bigint, position",
            [Jsonb({"key": "k6", "amount": 20})],
        ).fetchone() or (0, 0)
        batch.execute(
            "SELECT 1 FROM projection_bookmarks WHERE subscriber_name = %s FOR UPDATE",
            [Totals.name],
        )
        [holder] = batch.execute("SELECT pg_backend_pid()").fetchone() or (0,)
        swapper = threading.Thread(target=swap, daemon=True)
        swapper.start()
        wait_for(lambda: blocked_by(int(holder)) or outcome, what="the swap to wait for the lock")
        writer.commit()
        batch.execute(
            "UPDATE projection_bookmarks SET last_transaction_id = %s, last_position = %s"
            " WHERE subscriber_name = %s",
            [tx, position, Totals.name],
        )
        batch.commit()
        swapper.join(60)
    finally:
        writer.close()
        batch.close()
    [result] = outcome
    assert not isinstance(result, BaseException), result
    assert (result.events_applied, tuple(result.position)) == (1, (tx, position))
    assert RbEntry.objects.filter(amount=20).count() == 1  # in the tables swapped in


def blocked_by(pid: int) -> bool:
    """Whether some session waits for a lock that session ``pid`` holds."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", [pid]
        )
        return bool(cursor.fetchone()[0])


def test_a_swap_of_a_projection_without_its_bookmark_is_refused_and_changes_nothing() -> None:
    registry = build_registry([Totals()])
    rebuild = ready_rebuild(registry)
    Bookmark.objects.filter(subscriber_name=Totals.name).delete()
    with pytest.raises(RebuildRefused) as refused, transaction.atomic(durable=True):
        swap_rebuild(Totals.name, registry=registry)
    assert refused.value.code == "no_rebuild"
    assert refused.value.detail == f"{Totals.name} has no bookmark"
    rebuild.refresh_from_db()
    assert rebuild.phase == "ready"
    with connection.cursor() as cursor:
        assert describe(cursor, rebuild.schema, "rb_totals", "public")  # still the rebuild's


def test_the_new_tables_keep_every_name_of_the_live_ones() -> None:
    registry = build_registry([Totals()])
    rebuild = start(Totals.name, registry=registry)
    runner = RebuildRunner(registry.projections, "test")
    assert runner.step()  # copying schema
    rebuild.refresh_from_db()
    assert rebuild.phase == "building"
    with connection.cursor() as cursor:
        for table in ("rb_totals", "rb_entries"):
            live = describe(cursor, "public", table, "public")
            new = describe(cursor, rebuild.schema, table, "public")
            gaps = differences(table, live, new)
            # Only the secondary indexes wait for the bulk load.
            later = secondary_indexes(live)
            assert gaps == [f"index {name} on {table} was removed" for name in sorted(later)]
            assert {"rb_totals_by_total", "rb_entries_key_amount"} & set(later)
            assert set(new["constraints"]) >= {f"{table}_pkey"}
    run_rebuilds_once(registry)
    rebuild.refresh_from_db()
    assert rebuild.phase == "ready", rebuild.last_error
    with connection.cursor() as cursor:
        for table in ("rb_totals", "rb_entries"):
            live = describe(cursor, "public", table, "public")
            new = describe(cursor, rebuild.schema, table, "public")
            assert differences(table, live, new) == []
            assert live["indexes"].keys() == new["indexes"].keys()
            assert live["constraints"].keys() == new["constraints"].keys()


def test_cancel_drops_the_new_tables() -> None:
    registry = build_registry([Totals()])
    added(10)
    live_caught_up(registry, Totals.name)
    rebuild = start(Totals.name, registry=registry)
    run_rebuilds_once(registry)
    with transaction.atomic(durable=True):
        cancel_rebuild(Totals.name)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regnamespace(%s)", [rebuild.schema])
        assert cursor.fetchone()[0] is None
    assert current_rebuild(Totals.name).phase == "cancelled"  # type: ignore[union-attr]
    with pytest.raises(RebuildRefused) as refused, transaction.atomic(durable=True):
        cancel_rebuild(Totals.name)
    assert refused.value.code == "no_rebuild"


def test_verified_at_one_position_while_events_keep_arriving() -> None:
    """A worker runs the live projection and the rebuild while appends keep coming: the
    comparison still sees both at the same position (the same code: no difference)."""
    registry = build_registry([Totals()])
    added(200)
    stop = threading.Event()

    def keep_appending() -> None:
        n = 200
        try:
            while not stop.is_set():
                added(3, stream=f"busy-{n}", start=n)
                n += 3
                stop.wait(0.005)
        finally:
            connections.close_all()

    appender = threading.Thread(target=keep_appending)
    with running_worker(registry):
        rebuild = start(Totals.name, registry=registry)
        appender.start()
        try:
            wait_for(
                lambda: Rebuild.objects.get(pk=rebuild.pk).phase in ("ready", "failed"),
                timeout=120,
                what="the rebuild verified",
            )
        finally:
            stop.set()
            appender.join(30)
    rebuild.refresh_from_db()
    assert rebuild.phase == "ready", rebuild.last_error
    assert rebuild.verification is not None
    for table, found in rebuild.verification["tables"].items():
        assert found["only_live"] == found["only_new"] == found["differing"] == 0, table
        assert found["live_rows"] == found["new_rows"] > 0
    # The rows it compared stood at its position: as many entries as events up to there.
    tx, pos = rebuild.verification["position"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM events WHERE event_type = 'Added'"
            " AND (transaction_id, position) <= (%s::text::xid8, %s)",
            [tx, pos],
        )
        assert rebuild.verification["tables"]["rb_entries"]["live_rows"] == cursor.fetchone()[0]


CLONE_EXTRAS = """
CREATE ROLE {reader} NOLOGIN;
GRANT SELECT ON rb_totals TO {reader};
ALTER TABLE rb_totals ADD COLUMN seq serial;
ALTER TABLE rb_totals ADD COLUMN doubled bigint GENERATED ALWAYS AS (total * 2) STORED;
ALTER TABLE rb_totals ADD CONSTRAINT rb_totals_total_sane CHECK (total > -1000000000);
ALTER TABLE rb_totals SET (fillfactor = 90);
CREATE UNIQUE INDEX rb_totals_seq_once ON rb_totals (seq) WHERE seq > 0;
CREATE FUNCTION rb_totals_touch() RETURNS trigger LANGUAGE plpgsql
    AS $$ BEGIN NEW.n := NEW.n; RETURN NEW; END $$;
CREATE TRIGGER rb_totals_touched BEFORE INSERT OR UPDATE ON rb_totals
    FOR EACH ROW EXECUTE FUNCTION rb_totals_touch();
CREATE POLICY rb_totals_visible ON rb_totals FOR SELECT TO {reader} USING (n >= 0);
ALTER TABLE rb_totals ENABLE ROW LEVEL SECURITY;
"""


def test_the_clone_carries_grants_triggers_policies_sequences_and_options() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'rb_reader_' || oid FROM pg_database WHERE datname = current_database()"
        )
        reader = cursor.fetchone()[0]
        cursor.execute(f"DROP ROLE IF EXISTS {reader}")
        cursor.execute(CLONE_EXTRAS.format(reader=reader))
    try:
        registry = build_registry([Totals()])
        added(20)
        live_caught_up(registry, Totals.name)
        with connection.cursor() as cursor:
            cursor.execute("SELECT last_value FROM rb_totals_seq_seq")
            live_sequence = cursor.fetchone()[0]
        rebuild = start(Totals.name, registry=registry)
        run_rebuilds_once(registry)
        rebuild.refresh_from_db()
        assert rebuild.phase == "ready", rebuild.last_error
        with connection.cursor() as cursor:
            live = describe(cursor, "public", "rb_totals", "public")
            new = describe(cursor, rebuild.schema, "rb_totals", "public")
            assert differences("rb_totals", live, new) == []
            assert f"{reader}:SELECT" in new["grants"]
            assert set(new["triggers"]) == {"rb_totals_touched"}
            assert set(new["policies"]) == {"rb_totals_visible"}
            assert new["options"] == ["fillfactor=90"]
            assert new["row_security"] == [False, False]  # switched on at the swap
            # The serial column has a sequence of its own, under the live one's name.
            assert [c["sequence"] for c in new["columns"] if c["name"] == "seq"] == [
                "rb_totals_seq_seq"
            ]
            cursor.execute("SELECT last_value FROM rb_totals_seq_seq")
            assert cursor.fetchone()[0] == live_sequence
        with transaction.atomic(durable=True):
            swap_rebuild(Totals.name, registry=registry)
        with connection.cursor() as cursor:
            now = describe(cursor, "public", "rb_totals", "public")
            assert differences("rb_totals", live, now) == []
            assert now["row_security"] == [True, False]
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS rb_entries, rb_totals CASCADE")
            cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'eventdesk\\_%%'")
            for (schema,) in cursor.fetchall():
                cursor.execute(f'DROP SCHEMA "{schema}" CASCADE')
            cursor.execute("DROP FUNCTION IF EXISTS rb_totals_touch()")
            cursor.execute(f"DROP OWNED BY {reader}")
            cursor.execute(f"DROP ROLE {reader}")
