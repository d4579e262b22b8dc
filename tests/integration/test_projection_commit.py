"""A projection batch commits without waiting for the disk (synchronous_commit off, for
its transaction only): its writes and its bookmark are lost together in a server crash,
and applied again. An event appended in such a transaction still commits with the flush
(the trigger of eventstore migration 0004); nothing else is changed."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test import override_settings

from eventstore.postgres import PostgresEventStore
from eventstore.types import NewEvent, RecordedEvent, StreamAppend
from subscribers.bookmarks import ensure_bookmarks
from subscribers.projections import run_projection_batch
from subscribers.registry import build_registry
from tests.factories import append
from tests.support import bookmark

pytestmark = pytest.mark.django_db(transaction=True)


def setting() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('synchronous_commit')")
        return str(cursor.fetchone()[0])


class SeesTheSetting:
    """Notes the batch's synchronous_commit before and after an append of its own."""

    name = "test.commit_setting"
    batch_size = 10
    event_types = ("Probe",)

    def __init__(self, appends: bool = False) -> None:
        self.appends = appends
        self.seen: list[tuple[str, str | None]] = []

    def apply(self, event: RecordedEvent) -> None:
        before, after = setting(), None
        if self.appends:
            PostgresEventStore().append_streams(
                [StreamAppend(f"echo-{event.event_id}", [NewEvent("Echo")])]
            )
            after = setting()
        self.seen.append((before, after))


def one_batch(projection: SeesTheSetting) -> None:
    registry = build_registry([projection])
    ensure_bookmarks(list(registry))
    outcome = run_projection_batch(registry.projections[0])
    assert outcome.processed == 1


def test_a_batch_commits_without_waiting_for_the_disk_for_its_transaction_only() -> None:
    server = setting()
    assert server != "off"  # the suite's server waits for the disk, as most do
    probe = SeesTheSetting()
    probed = append("probe", "Probe")
    one_batch(probe)
    assert probe.seen == [("off", None)]
    assert bookmark(probe.name).cursor == probed[0].cursor
    assert setting() == server  # for the batch's transaction only


@override_settings(EVENTDESK={"projection_commit_waits_for_flush": True})
def test_the_option_keeps_the_servers_setting() -> None:
    server = setting()
    probe = SeesTheSetting()
    append("probe", "Probe")
    one_batch(probe)
    assert probe.seen == [(server, None)]


def test_an_append_inside_a_batch_commits_with_the_flush() -> None:
    server = setting()
    probe = SeesTheSetting(appends=True)
    append("probe", "Probe")
    one_batch(probe)
    assert probe.seen == [("off", server)]
    assert [e.event_type for e in PostgresEventStore().read_all(event_types=["Echo"])] == ["Echo"]


def test_appends_outside_batches_are_left_alone() -> None:
    server = setting()
    with transaction.atomic():
        append("plain", "Probe")
        assert setting() == server
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('synchronous_commit', 'off', true)")
        append("chosen", "Probe")  # a transaction that chose not to wait keeps its choice
        assert setting() == "off"


def test_an_append_rolled_back_to_its_savepoint_takes_the_flush_back_with_it() -> None:
    server = setting()
    inside: list[str] = []

    def append_then_fail() -> None:
        with transaction.atomic():
            append("undone", "Probe")
            inside.append(setting())
            raise RuntimeError("rolled back")

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT eventdesk_commit_without_flush()")
        assert setting() == "off"
        with pytest.raises(RuntimeError):
            append_then_fail()
        assert inside == [server]
        assert setting() == "off"  # no event appended in the end: no flush needed


def test_after_an_append_the_transaction_cannot_be_made_to_skip_the_flush_again() -> None:
    server = setting()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT eventdesk_commit_without_flush()")
        append("first", "Probe")
        assert setting() == server
        cursor.execute("SELECT eventdesk_commit_without_flush()")
        assert setting() == server  # the event appended above still waits for the disk
        append("second", "Probe")
        assert setting() == server


@override_settings(EVENTDESK={"projection_commit_waits_for_flush": True})
def test_a_batch_that_waits_runs_on_a_database_without_the_function() -> None:
    # A worker told to wait names no function of migration 0004 (before `migrate`, say).
    probe = SeesTheSetting()
    append("probe", "Probe")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DROP FUNCTION eventdesk_commit_without_flush()")
        one_batch(probe)
        transaction.set_rollback(True)  # the function is back
    assert probe.seen == [(setting(), None)]


def test_a_failures_record_commits_with_the_flush() -> None:
    # The redo after a failure records it (the wedge an operator is paged for): it waits.
    class Fails(SeesTheSetting):
        name = "test.commit_failing"

        def apply(self, event: RecordedEvent) -> None:
            super().apply(event)
            if event.data.get("poison"):
                raise RuntimeError("poison")

    server = setting()
    probe = Fails()
    good = append("good", "Probe")
    append("bad", "Probe", poison=True)
    registry = build_registry([probe])
    ensure_bookmarks(list(registry))
    outcome = run_projection_batch(registry.projections[0])
    assert outcome.failure is not None
    assert outcome.processed == 1
    assert bookmark(probe.name).cursor == good[0].cursor
    # The happy path (both events, then rolled back), then the redo of the first event in
    # the transaction that records the failure: that one waits for the disk.
    assert probe.seen == [("off", None), ("off", None), (server, None)]
