"""PostgreSQL crashes (an immediate stop: no checkpoint, the WAL replayed at the next
start) while a worker projects live events. A projection's batches commit without
waiting for the disk (docs/projections.md, "What a batch's commit waits for"), so the
crash may lose the last of them: their writes and their bookmark together. The worker
reconnects and applies those events again; the tables equal a replay of every event,
each counted once, and every appended event survives (appends wait for the disk).

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
from tests.reliability.test_rebuild_db_restart import ACTUAL, EXPECTED, SETUP, env_for
from tests.reliability.throwaway import db, manage, rows
from tests.support import ROOT, wait_for

pytestmark = pytest.mark.slow

# One stream of 100 events per call, each its own append (and commit).
CHUNK = """
INSERT INTO events (event_id, stream_id, stream_version, event_type, data, metadata)
SELECT gen_random_uuid(), 'acct-' || (g / 100), mod(g, 100) + 1, 'Added',
       jsonb_build_object('key', 'k' || mod(g, 13), 'amount', g), '{}'
FROM generate_series(%(first)s, %(first)s + 99) AS g
"""


def projected(layout: ServerLayout) -> int:
    """Events the live projection has counted (-1 while the server comes back)."""
    try:
        return int(rows(layout, "SELECT coalesce(sum(n), 0) FROM rb_totals")[0][0])
    except psycopg.OperationalError:
        return -1


def appended(layout: ServerLayout, first: int, last: int) -> None:
    with db(layout) as conn:
        for start in range(first, last, 100):
            conn.execute(CHUNK, {"first": start})


def test_live_projection_batches_ride_out_a_database_crash(
    server: ServerLayout, tmp_path: Path
) -> None:
    manage(env_for(server), "migrate", "--noinput")
    manage(env_for(server), "shell", "-c", SETUP)
    log = tmp_path / "worker.log"
    with open(log, "wb") as output:
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "run_subscribers", "--no-history"],
            cwd=ROOT, env=env_for(server, lease_seconds="2"),
            stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        appended(server, 0, 600)
        # Crash as soon as the projection has counted them: its last batches' commits
        # have not waited for the disk, and the crash may take them back.
        wait_for(lambda: projected(server) == 600, timeout=120, what="the projection caught up")
        embedded_pg._run(
            server, "pg_ctl", "-D", str(server.pgdata), "-m", "immediate", "-w", "stop"
        )
        embedded_pg.ensure_running(server)
        assert rows(server, "SELECT count(*) FROM events")[0][0] == 600  # appends survive
        appended(server, 600, 1200)
        wait_for(lambda: projected(server) == 1200, timeout=180, what="the projection after it")
        assert rows(server, ACTUAL) == rows(server, EXPECTED)  # each event counted once
        assert rows(server, "SELECT count(*), count(DISTINCT event_id) FROM rb_entries") == [
            (1200, 1200)
        ]
        assert worker.poll() is None, "the worker died with the database"
        assert "retrying in" in log.read_text()
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGKILL)
        worker.wait(30)
