"""PostgreSQL crashes (an immediate stop: no checkpoint, WAL replay at start) while a
worker rebuilds a projection: the worker reconnects, the rebuild goes on from the
position its last durable commit recorded (tables and bookmark together), and the
swapped tables equal a replay from scratch.

Runs on a THROWAWAY embedded server (its own data directory), never the suite's.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from config import embedded_pg
from config.embedded_pg import ServerLayout
from tests.reliability.throwaway import database_url, db, manage, rows
from tests.support import ROOT, wait_for
from tests.workers import worker_env

pytestmark = pytest.mark.slow

PROJECTION = "tests.rebuilds.KillableTotals"
NAME = "test.rb_killable"

SETUP = """
from django.db import connection
from tests.rebuilds import TABLE_MODELS
with connection.schema_editor() as editor:
    for model in TABLE_MODELS:
        editor.create_model(model)
"""
START = f"""
from django.db import transaction
from subscribers.rebuilds import start_rebuild
from subscribers.registry import build_registry
from tests.rebuilds import KillableTotals
with transaction.atomic():
    start_rebuild({NAME!r}, reason="restart test", started_by=None,
                  registry=build_registry([KillableTotals()]))
"""
SWAP = f"""
from django.db import transaction
from subscribers.rebuilds import swap_rebuild
from subscribers.registry import build_registry
from tests.rebuilds import KillableTotals
with transaction.atomic(durable=True):
    swap_rebuild({NAME!r}, registry=build_registry([KillableTotals()]))
"""
INSERT = """
INSERT INTO events (event_id, stream_id, stream_version, event_type, data, metadata)
SELECT gen_random_uuid(), 'acct-' || (g / 100), g % 100 + 1, 'Added',
       jsonb_build_object('key', 'k' || (g % 13), 'amount', g), '{}'
FROM generate_series(0, 1199) AS g
"""
EXPECTED = """
SELECT data->>'key', count(*), sum((data->>'amount')::bigint) FROM events
WHERE event_type = 'Added' GROUP BY 1 ORDER BY 1
"""
ACTUAL = "SELECT key, n, total FROM rb_totals ORDER BY 1"


def env_for(layout: ServerLayout, **options: str) -> dict[str, str]:
    env = worker_env([PROJECTION], **options)
    env.update(DATABASE_URL=database_url(layout), DJANGO_DEBUG="0")
    return env


def rebuild(layout: ServerLayout) -> tuple[str, int]:
    try:
        found = rows(layout, f"SELECT phase, events_done FROM projection_rebuilds"
                             f" WHERE projection_name = '{NAME}'")  # fmt: skip
    except psycopg.OperationalError:
        return ("", -1)  # the server is still coming back
    return (str(found[0][0]), int(found[0][1])) if found else ("", 0)


def test_a_rebuild_rides_out_a_database_crash(server: ServerLayout, tmp_path: Path) -> None:
    manage(env_for(server), "migrate", "--noinput")
    manage(env_for(server), "shell", "-c", SETUP)
    with db(server) as conn:
        conn.execute(INSERT)
    manage(env_for(server), "run_subscribers", "--once")  # the live projection, caught up
    manage(env_for(server), "shell", "-c", START)
    log = tmp_path / "worker.log"
    with open(log, "wb") as output:
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "run_subscribers", "--no-history"],
            cwd=ROOT, env=env_for(server, rb_slow="0.003", lease_seconds="2"),
            stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        # Its batches do not wait for the disk (synchronous_commit off): the last ~0.6 s
        # of them may be lost in the crash, with their bookmark. Those before are not.
        wait_for(lambda: rebuild(server)[1] >= 600, timeout=120, what="the build under way")
        # The batches seen so far reach the disk (their commits did not wait for it): a
        # CHECKPOINT flushes the WAL. Without it, on a loaded machine the WAL writer lagged
        # behind and the crash lost every batch (0 done: nothing to prove a resume with).
        with db(server) as conn:
            conn.execute("CHECKPOINT")
        # A crash: no shutdown checkpoint, the WAL is replayed at the next start.
        embedded_pg._run(
            server, "pg_ctl", "-D", str(server.pgdata), "-m", "immediate", "-w", "stop"
        )
        embedded_pg.ensure_running(server)
        phase, done = rebuild(server)
        assert phase == "building"
        assert 600 <= done < 1200
        wait_for(lambda: rebuild(server)[0] == "ready", timeout=180, what="the rebuild verified")
        assert rebuild(server)[1] == 1200  # resumed, each event counted once
        assert worker.poll() is None, "the worker died with the database"
        manage(env_for(server), "shell", "-c", SWAP)
        assert rows(server, ACTUAL) == rows(server, EXPECTED)
        assert "retrying in" in log.read_text()
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGKILL)
        worker.wait(30)
