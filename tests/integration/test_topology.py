"""The documented topology (docs/deployment.md, docs/pooler.md), run on this machine:

* PostgreSQL (the suite's server);
* PgBouncer 1.18 in transaction mode in front of it;
* two console processes behind one port (``uvicorn --workers 2``) through PgBouncer;
* three ``run_subscribers`` workers through PgBouncer, each LISTENing on a direct
  connection (``EVENTDESK_LISTEN_DATABASE_URL``), every process with
  ``EVENTDESK_DB_POOLER=transaction``.

Checked: every worker's wake-ups arrive, and events are applied in milliseconds, long
before any poll; a dismissal through the console works; a SIGKILL of one worker while
events keep coming loses nothing (a projection applies every event exactly once, a
stream-ordered reaction answers every job once, in stream order).
"""

from __future__ import annotations

import json
import signal
import statistics
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from eventstore.models import Event
from reactions_admin.acts.tokens.handler import issue_token
from subscribers.heartbeat import live_workers
from subscribers.models import Bookmark
from tests.conftest import ServedConsole, uvicorn_argv
from tests.factories import append, append_events, append_many, jobs, operator, wedged_reaction
from tests.pgbouncer import PgBouncer
from tests.stream_invariants import check_streams, handled_count
from tests.subscribers import StreamJobs, applied
from tests.support import decisions, raw_connection, wait_for, wait_until_visible
from tests.workers import start_pooled_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("applied_table")]

F = "tests.subscribers."
#: Long, so that an event applied within ARRIVES_SECONDS was woken up for, not polled.
POLL_SECONDS = 30.0
ARRIVES_SECONDS = 20.0  # a horizon held by another test run delays visibility
SAMPLES = 10


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (uvicorn's workers)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def post(base: str, token: str, path: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def latency_of_one_event() -> float:
    """Append one event; seconds until the projection has applied it."""
    with raw_connection() as watcher:
        query = "SELECT count(*) FROM test_applied_events WHERE subscriber = 'test.recorder'"
        before = watcher.execute(query).fetchone()
        started = time.perf_counter()
        append("topology", "Tick")
        while watcher.execute(query).fetchone() == before:
            assert time.perf_counter() - started < ARRIVES_SECONDS, "not woken up: polled?"
            time.sleep(0.002)
        return time.perf_counter() - started


def test_the_documented_topology(
    pgbouncer: PgBouncer,
    launch_console: Any,
    processes: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    StreamJobs.reset()
    pooled = pgbouncer.url(connection.settings_dict["NAME"], "eventdesk-topology")
    console: ServedConsole = launch_console(
        lambda port: [*uvicorn_argv(port), "--workers", "2"],
        DATABASE_URL=pooled,
        EVENTDESK_DB_POOLER="transaction",
    )
    wait_for(lambda: len(children(console.process.pid)) >= 2, what="two console processes")
    workers = [
        start_pooled_worker(
            pooled,
            [F + "RecordingProjection", F + "StreamJobs"],
            tmp_path / f"worker-{n}.log",
            poll=POLL_SECONDS,
            direct_listen=True,
            lease_seconds="5",
        )
        for n in range(3)
    ]
    processes.extend(workers)
    pids = {worker.pid for worker in workers}

    def all_listening() -> bool:
        mine = [w for w in live_workers() if w.pid in pids]
        return len(mine) == 3 and all(w.wakeups_working for w in mine)

    wait_for(all_listening, timeout=120, what="three workers whose wake-ups arrive")

    # Events flow with millisecond wake-ups (the poll interval is 30 s).
    latencies = sorted(1000 * latency_of_one_event() for _ in range(SAMPLES))

    # A dismissal through the console.
    events = wait_until_visible(append_events(3, stream="orders"))
    wedged_reaction("test.topology_reaction", events[0], failing=events[1])
    token = issue_token(operator("topology-operator")).secret
    status, body = post(
        console.base_url,
        token,
        "/agent/reactions/test.topology_reaction/dismiss-event",
        {"event_id": str(events[1].event_id), "reason": "poison, in the documented topology"},
    )
    assert status == 200, body
    assert Bookmark.objects.get(pk="test.topology_reaction").cursor == events[1].cursor
    assert [d.data["reason"] for d in decisions()] == ["poison, in the documented topology"]

    # Killing one worker loses nothing: appends go on before, during and after the kill.
    for n in range(4):
        jobs(f"run-{n}", 10)
    append_many(200)
    wait_for(lambda: handled_count() >= 5, what="the reaction under way")
    workers[0].send_signal(signal.SIGKILL)
    assert workers[0].wait(30) == -signal.SIGKILL
    for n in range(4, 8):
        jobs(f"run-{n}", 10)
    append_many(200)
    expected = Event.objects.count()

    def projected_everything() -> bool:
        # The projection sees every event (its own and the reaction's answers included).
        return len(applied("test.recorder")) >= Event.objects.count() >= expected

    wait_for(lambda: handled_count() == 80, timeout=180, what="every job answered")
    wait_for(projected_everything, timeout=180, what="every event projected")
    ids = [row[0] for row in applied("test.recorder")]
    assert len(ids) == len(set(ids)), "an event was projected twice"
    assert set(ids) == set(Event.objects.values_list("event_id", flat=True))
    check_streams(StreamJobs.name)
    assert all(worker.poll() is None for worker in workers[1:])
    print(
        f"\nFIGURES topology (PgBouncer transaction mode, 2 console processes, 3 workers "
        f"listening directly, poll {POLL_SECONDS:g} s): wake-up latency p50 "
        f"{statistics.median(latencies):,.0f} ms, max {latencies[-1]:,.0f} ms over {SAMPLES} "
        f"events; after one worker was killed: {len(ids)} events projected once each, 80 "
        "jobs answered once each"
    )
