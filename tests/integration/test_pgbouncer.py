"""Eventdesk through a real PgBouncer (Debian's 1.18) in transaction mode.

* Without ``EVENTDESK_LISTEN_DATABASE_URL`` the worker's LISTEN goes through the pooler,
  which hands its server connection to other clients: wake-ups do not arrive. The worker
  says so (heartbeat, one log line with the cause and the setting) and falls back to
  polling: every event is still applied, a poll interval later.
* With it (a direct connection for LISTEN only), wake-ups arrive: each event is applied
  long before any poll could have found it.
* A dismissal through the console's REST door, the console's pages, and a stream-ordered
  reaction, all through the pooler.

Each worker and console runs with ``EVENTDESK_DB_POOLER=transaction`` (no prepared
statements), as docs/pooler.md says.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db import connection

from config.pooler import prepared_statement_failure
from reactions_admin.acts.tokens.handler import issue_token
from subscribers.heartbeat import WorkerInfo, workers
from subscribers.models import Bookmark
from tests.conftest import ServedConsole
from tests.factories import append, append_events, jobs, operator, wedged_reaction
from tests.pgbouncer import PgBouncer
from tests.stream_invariants import check_streams, handled_count
from tests.subscribers import StreamJobs
from tests.support import (
    ROOT,
    agent_call,
    decisions,
    post_dismiss,
    raw_connection,
    wait_for,
    wait_until_visible,
)
from tests.workers import start_pooled_worker, worker_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("applied_table")]

F = "tests.subscribers."
#: With a direct listen connection: so long that only a wake-up explains an event applied
#: within ARRIVES_SECONDS.
LONG_POLL_SECONDS = 300.0
ARRIVES_SECONDS = 30.0
#: Without one: the worker polls, and every event still arrives within a poll or two.
SHORT_POLL_SECONDS = 2.0
SAMPLES = 8


def through(bouncer: PgBouncer) -> str:
    """DATABASE_URL of the test database through ``bouncer``."""
    return bouncer.url(connection.settings_dict["NAME"], "eventdesk-pooled")


def checked(process: subprocess.Popen[bytes]) -> WorkerInfo | None:
    """The worker's heartbeat, once its wake-up check has concluded."""
    assert process.poll() is None, "the worker exited"
    found = [w for w in workers() if w.pid == process.pid and w.live]
    return found[0] if found and found[0].wakeups_working is not None else None


def recording_worker_checked(
    bouncer: PgBouncer, processes: list[subprocess.Popen[bytes]], log: Path, **options: Any
) -> WorkerInfo:
    """A worker through ``bouncer`` running the recording projection (``options``: those of
    ``start_pooled_worker``): its heartbeat, once its wake-up check has concluded."""
    worker = start_pooled_worker(through(bouncer), [F + "RecordingProjection"], log, **options)
    processes.append(worker)
    found: WorkerInfo = wait_for(
        lambda: checked(worker), timeout=120, what="the worker's wake-up check"
    )
    return found


def latency_of_one_event(deadline: float) -> float:
    """Append one event; seconds until the worker has applied it (a direct connection
    watches the projection's table every few milliseconds)."""
    with raw_connection() as watcher:
        before = watcher.execute("SELECT count(*) FROM test_applied_events").fetchone()
        started = time.perf_counter()
        append("pooled", "Tick")
        while True:
            now = watcher.execute("SELECT count(*) FROM test_applied_events").fetchone()
            if now != before:
                return time.perf_counter() - started
            if time.perf_counter() - started > deadline:
                raise AssertionError(f"the event was not applied within {deadline:g}s")
            time.sleep(0.002)


def figures(latencies: list[float]) -> str:
    ms = sorted(1000 * value for value in latencies)
    return f"p50 {statistics.median(ms):,.0f} ms, max {ms[-1]:,.0f} ms over {len(ms)} events"


def test_without_a_listen_url_wakeups_do_not_arrive_and_the_worker_says_so_and_polls(
    pgbouncer: PgBouncer, processes: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    info = recording_worker_checked(
        pgbouncer, processes, log, poll=SHORT_POLL_SECONDS,
        direct_listen=False, wakeup_check_seconds="2",  # several checks, one log line
    )  # fmt: skip
    assert info.wakeups_working is False
    assert info.wakeups_text == f"wake-ups are not arriving; polling every {SHORT_POLL_SECONDS:g} s"
    # It falls back to polling: every event still arrives.
    latencies = [latency_of_one_event(3 * SHORT_POLL_SECONDS + 30) for _ in range(SAMPLES)]
    said = [line for line in log.read_text().splitlines() if "wake-ups are not arriving" in line]
    assert len(said) == 1, said  # once, not at every check
    assert "EVENTDESK_LISTEN_DATABASE_URL" in said[0]
    assert "transaction-mode pooler" in said[0]
    print(
        f"\nFIGURES pgbouncer without a listen URL (poll {SHORT_POLL_SECONDS:g} s): "
        f"{figures(latencies)}; pgbouncer log 'not linked' lines: "
        f"{pgbouncer.log_text().count('when not linked')}"
    )


def test_with_a_direct_listen_url_wakeups_arrive_through_the_pooler(
    pgbouncer: PgBouncer, processes: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    info = recording_worker_checked(
        pgbouncer, processes, log, poll=LONG_POLL_SECONDS, direct_listen=True
    )
    assert info.wakeups_working is True, log.read_text()
    # The poll interval is 5 minutes: an event applied within ARRIVES_SECONDS was woken up for.
    latencies = [latency_of_one_event(ARRIVES_SECONDS) for _ in range(SAMPLES)]
    assert "wake-ups are not arriving" not in log.read_text()
    print(f"\nFIGURES pgbouncer with a direct listen URL: {figures(latencies)}")


def test_the_console_and_a_dismissal_through_the_pooler(
    pgbouncer: PgBouncer, launch_console: Any
) -> None:
    events = wait_until_visible(append_events(5, stream="orders"))
    wedged_reaction("test.pooled", events[0], failing=events[1])
    token = issue_token(operator("pooled-operator")).secret
    console: ServedConsole = launch_console(
        DATABASE_URL=pgbouncer.url(connection.settings_dict["NAME"], "eventdesk-pooled-console"),
        EVENTDESK_DB_POOLER="transaction",
    )
    # Every page reads through the pooler: more than a pool's worth of requests in a row.
    for _ in range(12):
        status, listed = agent_call(console.base_url, token, "/agent/reactions")
        assert status == 200, listed
    assert "test.pooled" in json.dumps(listed)
    assert console.get("/admin/login/")[0] == 200
    reason = "poison, through PgBouncer"
    status, body = post_dismiss(console.base_url, token, "test.pooled", events[1].event_id, reason)
    assert status == 200, body
    assert Bookmark.objects.get(pk="test.pooled").cursor == events[1].cursor
    [decision] = decisions()
    assert decision.data["reason"] == "poison, through PgBouncer"
    assert "prepared statement" not in console.output()


def test_a_stream_ordered_reaction_through_the_pooler(
    pgbouncer: PgBouncer, processes: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    appended = [event for n in range(6) for event in jobs(f"run-{n}", 5)]
    worker = start_pooled_worker(
        through(pgbouncer), [F + "StreamJobs"], tmp_path / "worker.log", poll=1.0,
        direct_listen=True,
    )  # fmt: skip
    processes.append(worker)
    wait_for(lambda: handled_count() == len(appended), timeout=120, what="every job handled")
    check_streams(StreamJobs.name)
    assert worker.poll() is None


def test_prepared_statements_break_behind_it_and_the_pooler_setting_turns_them_off(
    pgbouncer: PgBouncer,
) -> None:
    """Named prepared statements live in a server session; PgBouncer 1.18 in transaction
    mode hands the next transaction another one. psycopg prepares a statement after
    ``prepare_threshold`` runs (Eventdesk's default 5; 0 here, to get there at once)."""

    def run(prepare_threshold: int | None) -> BaseException | None:
        dsn = pgbouncer.url(connection.settings_dict["NAME"])
        with (
            psycopg.connect(dsn, autocommit=True, prepare_threshold=prepare_threshold) as one,
            psycopg.connect(dsn) as other,
        ):
            one.execute("SELECT %s::int", [1])  # prepared on the only server connection
            other.execute("SELECT 1")  # holds that server connection in a transaction
            try:
                one.execute("SELECT %s::int", [2])  # runs on another server connection
            except psycopg.Error as exc:
                return exc
            return None

    failure = run(0)
    assert failure is not None
    assert prepared_statement_failure(failure), failure
    assert run(None) is None  # what EVENTDESK_DB_POOLER=transaction sets
    shown = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c",
         "from django.db import connection;"
         " print(connection.get_connection_params()['prepare_threshold'])"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
        env={**worker_env([]), "EVENTDESK_DB_POOLER": "transaction",
             "DATABASE_URL": pgbouncer.url(connection.settings_dict["NAME"])},
    )  # fmt: skip
    assert shown.stdout.strip().splitlines()[-1] == "None"
