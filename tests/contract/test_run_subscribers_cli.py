"""``manage.py run_subscribers`` through its real entry point."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from subscribers.models import Bookmark
from tests.factories import append, append_many
from tests.subscribers import applied
from tests.support import bookmark, wait_for
from tests.workers import run_worker, start_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("applied_table")]

F = "tests.subscribers."
BOTH = {"subscribers": [F + "RecordingProjection", F + "EchoReaction"]}


def test_once_processes_what_it_can_and_exits_zero() -> None:
    events = append_many(15)

    def once() -> bool:
        done = run_worker([F + "RecordingProjection"], "--once")
        assert done.returncode == 0, done.stderr
        assert "event(s) processed" in done.stdout
        return bookmark("test.recorder").cursor == events[-1].cursor

    wait_for(once, what="--once to catch up")
    assert len(applied("test.recorder")) == 15


@override_settings(EVENTDESK=BOTH)
def test_subscriber_option_runs_only_the_named_ones() -> None:
    append("s", "Ping")
    call_command("run_subscribers", "--once", "--subscriber", "test.recorder")
    assert list(Bookmark.objects.values_list("subscriber_name", flat=True)) == ["test.recorder"]


@override_settings(EVENTDESK=BOTH)
@pytest.mark.parametrize(
    ("flag", "expected"),
    [("--projections-only", ["test.recorder"]), ("--reactions-only", ["test.echo"])],
)
def test_kind_options(flag: str, expected: list[str]) -> None:
    call_command("run_subscribers", "--once", flag)
    assert list(Bookmark.objects.values_list("subscriber_name", flat=True)) == expected


@override_settings(EVENTDESK=BOTH)
def test_unknown_subscriber_is_refused() -> None:
    with pytest.raises(CommandError, match="No subscriber named 'ghost'"):
        call_command("run_subscribers", "--once", "--subscriber", "ghost")


def test_registry_refusal_stops_the_command_with_a_clear_message() -> None:
    done = run_worker([F + "RecordingProjection", F + "APPLIED_TABLE"], "--once")
    assert done.returncode != 0
    assert "is not a subscriber" in done.stderr
    assert not Bookmark.objects.exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_finishes_the_current_batch_and_exits_zero(
    processes, tmp_path: Path, signum: int
) -> None:
    events = append_many(200)
    log = tmp_path / "worker.log"
    worker = start_worker([F + "SlowRecordingProjection"], log=log)
    processes.append(worker)
    wait_for(lambda: applied("test.slow_recorder"), what="the worker to start applying")
    worker.send_signal(signum)
    assert worker.wait(60) == 0, log.read_text()
    rows = applied("test.slow_recorder")
    assert 0 < len(rows) <= len(events)
    # What was applied and the bookmark agree: the batch in progress finished (or rolled back).
    assert rows[-1][1] == bookmark("test.slow_recorder").last_position
    assert [row[0] for row in rows] == [e.event_id for e in events[: len(rows)]]
