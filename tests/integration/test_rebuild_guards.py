"""What a rebuild refuses, and what PostgreSQL refuses it: undeclared tables, foreign keys
from outside, a migration during a rebuild, two starts at once, a reaction, a reader
holding a table."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, connections, transaction

from eventstore import NewEvent
from eventstore.postgres import PostgresEventStore
from subscribers.models import Bookmark, Rebuild
from subscribers.rebuilds import (
    RebuildRefused,
    cancel_rebuild,
    pause_rebuild,
    resume_rebuild,
    retry_rebuild,
    roll_back_rebuild,
    start_rebuild,
    swap_rebuild,
    with_lock_retries,
)
from subscribers.rebuilds.audit import REBUILD_STREAM
from subscribers.rebuilds.runner import RebuildRunner, run_rebuilds_once
from subscribers.rebuilds.steps import SwapResult
from subscribers.registry import SubscriberRegistry, build_registry
from tests.factories import append_to
from tests.rebuilds import (
    BrokenInvariant,
    FailsOnThirteen,
    NoModels,
    QualifiedWriter,
    RawTotals,
    RbEntry,
    RbNote,
    RbTotal,
    Totals,
    WritesNotes,
    rows,
)
from tests.support import raw_connection, wait_for
from tests.workers import drain

pytestmark = pytest.mark.usefixtures("rebuild_tables")


def added(count: int, start: int = 0) -> None:
    append_to("acct-1", [NewEvent("Added", {"key": f"k{(start + i) % 7}", "amount": start + i})
                         for i in range(count)])  # fmt: skip


def caught_up(registry: SubscriberRegistry) -> None:
    head = PostgresEventStore().head()
    names = [entry.name for entry in registry.projections]

    def there() -> bool:
        return all(Bookmark.objects.get(subscriber_name=n).cursor >= head for n in names)

    drain(registry, there)


def start(registry: SubscriberRegistry, name: str | None = None, **kwargs: Any) -> Rebuild:
    with transaction.atomic():
        return start_rebuild(
            name or registry.projections[0].name,
            reason="test",
            started_by=None,
            registry=registry,
            **kwargs,
        )


def ready_to_swap() -> tuple[SubscriberRegistry, Rebuild]:
    """Ten events, Totals caught up with them, and its rebuild run until it is ready."""
    registry = build_registry([Totals()])
    added(10)
    caught_up(registry)
    rebuild = start(registry)
    run_rebuilds_once(registry)
    return registry, rebuild


def assert_run_to_ready(registry: SubscriberRegistry, rebuild: Rebuild, events_done: int) -> None:
    """One run of the runner takes ``rebuild`` to ready, with ``events_done`` events."""
    run_rebuilds_once(registry)
    rebuild.refresh_from_db()
    assert rebuild.phase == "ready"
    assert rebuild.events_done == events_done


def refused(step: Callable[[], Any]) -> RebuildRefused:
    with pytest.raises(RebuildRefused) as caught, transaction.atomic(durable=True):
        step()
    return caught.value


def decisions() -> list[dict[str, Any]]:
    return [e.data for e in PostgresEventStore().read_stream(REBUILD_STREAM)]


# --- the guard: a rebuild never writes to a live table ----------------------------------------


@pytest.mark.parametrize(
    ("projection", "table"),
    [
        pytest.param(WritesNotes, "rb_notes", id="orm-undeclared-table"),
        pytest.param(RawTotals, "rb_notes", id="raw-sql-undeclared-table"),
        pytest.param(QualifiedWriter, "rb_totals", id="schema-qualified-write"),
    ],
)
def test_a_write_outside_the_new_tables_fails_the_rebuild_naming_the_table(
    projection: type, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if projection is RawTotals:
        monkeypatch.setattr(RawTotals, "undeclared", "rb_notes")
        with connection.cursor() as cursor:  # the raw projection's note columns
            cursor.execute(
                "ALTER TABLE rb_notes ADD COLUMN subscriber text, ADD COLUMN event_id uuid,"
                " ADD COLUMN position bigint, ADD COLUMN event_type text,"
                " ALTER COLUMN key DROP NOT NULL, ALTER COLUMN text DROP NOT NULL"
            )
    registry = build_registry([projection()])
    added(20)
    caught_up(registry)
    live = {model: rows(model) for model in (RbTotal, RbEntry)}
    notes = RbNote.objects.count()
    rebuild = start(registry)
    run_rebuilds_once(registry)
    rebuild.refresh_from_db()
    assert rebuild.phase == "failed"
    assert f"wrote to the table {table}" in rebuild.last_error
    assert rebuild.failing_event_id is not None
    assert {model: rows(model) for model in (RbTotal, RbEntry)} == live
    assert RbNote.objects.count() == notes
    [failed] = [d for d in decisions() if d["choice"] == "RebuildFailed"]
    assert failed["inputs"]["event_id"] == str(rebuild.failing_event_id)
    assert failed["inputs"]["actor_kind"] == "system"
    # A failed rebuild is not swapped; the operator cancels or retries it.
    assert refused(lambda: swap_rebuild(registry.projections[0].name, registry=registry)).code == (
        "rebuild_failed"
    )


# --- refusals at the start ---------------------------------------------------------------------


class Mailer:
    name = "test.rb_mailer"

    def handle(self, event: Any) -> None:
        return None


def test_a_reaction_is_never_rebuilt() -> None:
    registry = build_registry([Mailer()])
    assert refused(lambda: start(registry, Mailer.name)).code == "reaction_cannot_be_rebuilt"
    assert not Rebuild.objects.exists()


def test_a_projection_without_models_or_unknown_is_refused() -> None:
    registry = build_registry([NoModels()])
    problem = refused(lambda: start(registry))
    assert problem.code == "projection_not_rebuildable"
    assert "models" in problem.detail
    assert refused(lambda: start(registry, "test.nobody")).code == "subscriber_not_found"


def test_a_foreign_key_from_outside_makes_it_not_rebuildable() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE rb_outside (id int PRIMARY KEY,"
            " total_key varchar(50) REFERENCES rb_totals (key))"
        )
    problem = refused(lambda: start(build_registry([Totals()])))
    assert problem.code == "projection_not_rebuildable"
    assert "rb_outside" in problem.detail
    assert not Rebuild.objects.exists()


def test_of_two_starts_at_once_one_wins() -> None:
    registry = build_registry([Totals()])
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt() -> None:
        try:
            barrier.wait(10)
            with transaction.atomic(durable=True):
                start_rebuild(Totals.name, reason="race", started_by=None, registry=registry)
                with connection.cursor() as cursor:  # both inserts overlap
                    cursor.execute("SELECT pg_sleep(0.2)")
            outcomes.append("started")
        except RebuildRefused as exc:
            outcomes.append(exc.code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["rebuild_in_progress", "started"]
    assert Rebuild.objects.count() == 1


# --- verification, swap and roll back refusals -------------------------------------------------


def test_a_swap_before_verification_or_with_problems_is_refused() -> None:
    registry = build_registry([BrokenInvariant()])
    added(10)
    caught_up(registry)
    rebuild = start(registry)
    assert refused(lambda: swap_rebuild(BrokenInvariant.name, registry=registry)).code == (
        "rebuild_not_ready"
    )
    run_rebuilds_once(registry)
    rebuild.refresh_from_db()
    assert rebuild.phase == "ready"
    assert rebuild.verification is not None
    assert rebuild.verification["problems"] == ["no total may be odd"]
    problem = refused(lambda: swap_rebuild(BrokenInvariant.name, registry=registry))
    assert problem.code == "rebuild_not_ready"
    assert "no total may be odd" in problem.detail


def test_a_migration_during_the_rebuild_refuses_the_swap_and_since_the_swap_the_roll_back() -> None:
    registry, _ = ready_to_swap()
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE rb_totals ADD COLUMN label text NOT NULL DEFAULT ''")
    problem = refused(lambda: swap_rebuild(Totals.name, registry=registry))
    assert problem.code == "table_definition_changed"
    assert "column rb_totals.label was added" in problem.detail
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE rb_totals DROP COLUMN label")
    # Dropped again: the definition is the same as before, the swap goes ahead.
    with transaction.atomic(durable=True):
        swap_rebuild(Totals.name, registry=registry)
    with connection.cursor() as cursor:
        cursor.execute("CREATE INDEX rb_totals_by_n ON rb_totals (n)")
    problem = refused(lambda: roll_back_rebuild(Totals.name))
    assert problem.code == "table_definition_changed"
    assert "index rb_totals_by_n on rb_totals was added" in problem.detail
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX rb_totals_by_n")
    with transaction.atomic(durable=True):
        roll_back_rebuild(Totals.name)
    assert refused(lambda: roll_back_rebuild(Totals.name)).code == "nothing_to_roll_back"


def test_the_swap_waits_for_a_reader_holding_a_table_without_queueing_others() -> None:
    registry, rebuild = ready_to_swap()
    reader = raw_connection(autocommit=False)
    reader.execute("SELECT count(*) FROM rb_totals").fetchone()  # holds its lock
    try:
        # One try gives up within the lock timeout; nothing changed.
        assert refused(lambda: swap_rebuild(Totals.name, registry=registry)).code == (
            "rebuild_locks_busy"
        )
        rebuild.refresh_from_db()
        assert rebuild.phase == "ready"

        def release_when_noted() -> None:
            wait_for(
                lambda: "waiting for the tables' locks" in Rebuild.objects.get(pk=rebuild.pk).note,
                what="the swap saying it waits",
            )
            # Another reader is not queued behind the swap for long: it gets through.
            other = raw_connection()
            assert other.execute("SELECT count(*) FROM rb_totals").fetchone() == (7,)
            other.close()
            reader.rollback()
            connections.close_all()

        releaser = threading.Thread(target=release_when_noted)
        releaser.start()

        def act() -> Any:
            with transaction.atomic(durable=True):
                return swap_rebuild(Totals.name, registry=registry)

        result = with_lock_retries(act, name=Totals.name, tries=200, pause_seconds=0.05)
        releaser.join(30)
    finally:
        reader.close()
    assert result.rebuild.phase == "swapped"
    rebuild.refresh_from_db()
    assert rebuild.note == ""


# --- pause, failures, cleanup --------------------------------------------------------------------


def test_a_paused_rebuild_waits_and_resumes_where_it_stood() -> None:
    registry = build_registry([Totals()])
    added(30)
    caught_up(registry)
    rebuild = start(registry)
    runner = RebuildRunner(registry.projections, "test")
    runner.step()  # copying schema
    with transaction.atomic(durable=True):
        pause_rebuild(Totals.name)
    assert not runner.step()
    with transaction.atomic(durable=True):
        resume_rebuild(Totals.name)
    assert_run_to_ready(registry, rebuild, events_done=30)


def test_a_failing_event_is_retried_then_the_rebuild_fails_and_can_be_retried(
    settings: Any,
) -> None:
    settings.EVENTDESK = {"max_attempts": 2, "retry_base_seconds": 0.01}
    registry = build_registry([FailsOnThirteen()])
    added(20)
    caught_up(registry)
    FailsOnThirteen.armed = True
    rebuild = start(registry)
    wait_for(
        lambda: (
            run_rebuilds_once(registry) >= 0
            and Rebuild.objects.get(pk=rebuild.pk).phase == "failed"
        ),
        what="the rebuild failed",
    )
    rebuild.refresh_from_db()
    assert rebuild.last_error == "ValueError: thirteen"
    assert rebuild.attempts == 2
    assert rebuild.events_done == 13  # the events before it are applied and kept
    FailsOnThirteen.armed = False
    with transaction.atomic(durable=True):
        retry_rebuild(FailsOnThirteen.name)
    assert_run_to_ready(registry, rebuild, events_done=20)


def test_kept_tables_past_their_window_are_dropped_by_the_system() -> None:
    registry, rebuild = ready_to_swap()
    with transaction.atomic(durable=True):
        swap_rebuild(Totals.name, registry=registry)
    rebuild.refresh_from_db()
    assert RebuildRunner(registry.projections, "test").clean_up() == 0  # within its window
    Rebuild.objects.filter(pk=rebuild.pk).update(kept_until="2000-01-01T00:00:00Z")
    assert RebuildRunner(registry.projections, "test").clean_up() == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regnamespace(%s)", [rebuild.kept_schema])
        assert cursor.fetchone() == (None,)
    [dropped] = [d for d in decisions() if d["choice"] == "RebuildTablesDropped"]
    assert dropped["actor"]["username"] is None
    assert dropped["inputs"]["actor_kind"] == "system"
    assert dropped["context"] == "ProjectionRebuild"
    assert refused(lambda: roll_back_rebuild(Totals.name)).code == "nothing_to_roll_back"


# --- after a swap: the earlier kept tables and the role, outside its transaction -------------


def swapped_again(registry: SubscriberRegistry) -> tuple[Rebuild, SwapResult]:
    """A second rebuild of the registry's projection, run and swapped in."""
    added(3, start=100)
    caught_up(registry)
    rebuild = start(registry)
    run_rebuilds_once(registry)
    with transaction.atomic(durable=True):
        result = swap_rebuild(Totals.name, registry=registry)
    rebuild.refresh_from_db()
    return rebuild, result


def schema_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regnamespace(%s) IS NOT NULL", [name])
        return bool(cursor.fetchone()[0])


def role_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", [name])
        return bool(cursor.fetchone()[0])


def test_a_swap_drops_the_earlier_kept_tables_and_its_role_after_its_commit() -> None:
    registry, first = ready_to_swap()
    with transaction.atomic(durable=True):
        swap_rebuild(Totals.name, registry=registry)
    first.refresh_from_db()
    assert schema_exists(first.kept_schema)
    assert not role_exists(first.role_name)
    second, result = swapped_again(registry)
    assert second.phase == "swapped"
    first.refresh_from_db()
    assert first.kept_dropped_at is not None
    assert not schema_exists(first.kept_schema)
    assert schema_exists(second.kept_schema)  # the last swap's: it can be rolled back
    assert not role_exists(second.role_name)
    assert result.as_inputs()["dropped_kept_schema"] == first.kept_schema  # the decision's
    # The live tables are the second rebuild's, at the live position: every event counted.
    assert sum(total for *_, total in rows(RbTotal)) == sum(range(10)) + 100 + 101 + 102
    with transaction.atomic(durable=True):
        roll_back_rebuild(Totals.name)  # to the first swap's tables, the second's kept ones
    assert Rebuild.objects.get(pk=second.pk).phase == "rolled_back"


def test_a_reader_of_the_earlier_kept_tables_neither_blocks_the_swap_nor_loses_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The swap no longer drops them in its own transaction (which every reader of events
    waits for): a reader holding them delays nothing, they stay for the worker's cleanup,
    and the cleanup drops them (and the role the swap could not) with its decision."""
    registry, first = ready_to_swap()
    with transaction.atomic(durable=True):
        swap_rebuild(Totals.name, registry=registry)
    first.refresh_from_db()
    reader = raw_connection(autocommit=False)
    try:
        reader.execute(f'SELECT count(*) FROM "{first.kept_schema}".rb_totals')
        caplog.set_level("WARNING", logger="eventdesk.rebuilds")
        second, _ = swapped_again(registry)  # the clearing waits 2 s for the reader, then gives up
        assert second.phase == "swapped"
        assert "left for the worker's cleanup" in caplog.text
        assert schema_exists(first.kept_schema)
        assert role_exists(second.role_name)
        with connection.cursor() as cursor:  # its rights went at the exchange, all the same
            cursor.execute(
                "SELECT has_table_privilege(%s, 'public.rb_totals', 'INSERT, UPDATE, DELETE')",
                [second.role_name],
            )
            assert cursor.fetchone() == (False,)
        first.refresh_from_db()
        assert first.kept_dropped_at is None
        runner = RebuildRunner(registry.projections, "test")
        assert runner.clean_up() == 0  # within the minute the swap has to clear it
        assert second.swapped_at is not None
        Rebuild.objects.filter(pk=second.pk).update(
            swapped_at=second.swapped_at - timedelta(minutes=2)
        )
        # Past that minute the cleanup waits for the reader's lock 100 ms at most (it holds
        # every reader of events back meanwhile), then leaves them for its next pass.
        assert runner.clean_up() == 0
        assert "could not be dropped now" in caplog.text
        assert schema_exists(first.kept_schema)
    finally:
        reader.close()
    assert runner.clean_up() == 1
    assert not schema_exists(first.kept_schema)
    assert not role_exists(second.role_name)
    assert schema_exists(second.kept_schema)
    [dropped] = [d for d in decisions() if d["choice"] == "RebuildTablesDropped"]
    assert dropped["inputs"]["kept_schema"] == first.kept_schema
    assert "a later swap" in dropped["reason"]
    assert runner.clean_up() == 0


def test_the_kept_schema_is_made_at_the_start_and_a_cancel_drops_it() -> None:
    _, rebuild = ready_to_swap()
    rebuild.refresh_from_db()
    assert schema_exists(rebuild.kept_schema)
    with transaction.atomic(durable=True):
        cancel_rebuild(Totals.name)
    assert not schema_exists(rebuild.kept_schema)
    assert not schema_exists(rebuild.schema)
    assert not role_exists(rebuild.role_name)


def test_a_rebuild_started_before_the_kept_schema_came_at_its_start_still_swaps() -> None:
    registry, rebuild = ready_to_swap()
    rebuild.refresh_from_db()
    with connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA "{rebuild.kept_schema}"')
    with transaction.atomic(durable=True):
        swap_rebuild(Totals.name, registry=registry)
    assert Rebuild.objects.get(pk=rebuild.pk).phase == "swapped"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_class WHERE relnamespace = to_regnamespace(%s)"
            " AND relkind = 'r'",
            [rebuild.kept_schema],
        )
        assert cursor.fetchone() == (2,)  # the live rb_totals and rb_entries, kept
