"""Database restart: PostgreSQL stopped and started under a running worker and API server.

Runs on a THROWAWAY embedded server (its own data directory), never the suite's: the
worker reconnects with backoff, LISTENs again, and finishes with every invariant; the
REST API answers 503 ``database_unavailable`` (JSON, no traceback) while it is down.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from config import embedded_pg
from config.embedded_pg import ServerLayout
from eventstore.sql import HEAD
from tests.factories import insert_mixed
from tests.reliability.subscribers import (
    ACTUAL_BATCH_TOTALS,
    ACTUAL_TOTALS,
    EXPECTED_BATCH_TOTALS,
    EXPECTED_TOTALS,
    MIXED_FEED_NAMES,
    MIXED_FEED_SUBSCRIBERS,
    TABLES,
)
from tests.reliability.throwaway import database_url, db, manage, rows
from tests.support import ROOT, agent_answer, free_port, wait_for
from tests.workers import worker_env

pytestmark = pytest.mark.slow

APP = "eventdesk-restart-worker"

MAKE_OPERATOR = """
from django.contrib.auth.models import Permission, User
from reactions_admin.acts.tokens.handler import issue_token
user = User.objects.create_user("operator", password="pw-for-tests", is_staff=True)
user.user_permissions.add(Permission.objects.get(codename="dismiss_event"))
print(issue_token(user).secret)
"""


def env_for(layout: ServerLayout, application_name: str = "", **options: str) -> dict[str, str]:
    env = worker_env(MIXED_FEED_SUBSCRIBERS, **options)
    env.update(DATABASE_URL=database_url(layout, application_name), DJANGO_DEBUG="0")
    return env


def finished(layout: ServerLayout) -> bool:
    head = rows(layout, HEAD)
    marks = dict(
        (name, (tx, pos))
        for name, tx, pos in rows(
            layout,
            "SELECT subscriber_name, last_transaction_id, last_position FROM projection_bookmarks",
        )
    )
    orders = rows(layout, "SELECT count(*) FROM events WHERE event_type = 'Order'")[0][0]
    receipts = rows(layout, "SELECT count(*) FROM events WHERE event_type = 'Receipt'")[0][0]
    return (
        bool(head) and all(marks.get(n) == head[0] for n in MIXED_FEED_NAMES) and orders == receipts
    )


def test_the_worker_and_the_api_ride_out_a_database_restart(
    server: ServerLayout, tmp_path: Path
) -> None:
    manage(env_for(server), "migrate", "--noinput")
    token = manage(env_for(server), "shell", "-c", MAKE_OPERATOR).strip().splitlines()[-1]
    with db(server) as conn:
        conn.execute(TABLES)
        insert_mixed(conn, "before", 3000)
    log = tmp_path / "worker.log"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    started: list[subprocess.Popen[bytes]] = []
    try:
        with open(log, "wb") as output:
            # A long poll interval: after the restart only a re-LISTENed NOTIFY wakes it soon.
            worker = subprocess.Popen(
                [sys.executable, "manage.py", "run_subscribers"],
                cwd=ROOT,
                env=env_for(server, APP, poll_interval_seconds="10", lease_seconds="5"),
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        started.append(worker)
        with open(tmp_path / "api.log", "wb") as output:
            api = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "config.asgi:application",
                 "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                cwd=ROOT, env=env_for(server), stdout=output, stderr=subprocess.STDOUT,
            )  # fmt: skip
        started.append(api)

        def api_up() -> bool:
            try:
                return agent_answer(base, token, "/agent/reactions")[0] == 200
            except OSError:
                return False

        wait_for(api_up, timeout=60, what="the API server")
        # Mid-run: some receipts written, not all.
        wait_for(
            lambda: rows(server, "SELECT count(*) FROM events WHERE event_type = 'Receipt'")[0][0],
            timeout=60,
            what="the worker to be under way",
        )
        order = rows(server, "SELECT event_id::text FROM events WHERE event_type = 'Order'")[-1][0]

        assert embedded_pg.stop(server)
        down: list[tuple[int, str]] = []
        deadline = time.monotonic() + 4  # long enough for the backoff to grow
        while time.monotonic() < deadline:
            down.append(agent_answer(base, token, "/agent/reactions"))
            down.append(agent_answer(base, token, "/agent/reactions/rel.receipts"))
            down.append(
                agent_answer(
                    base,
                    token,
                    "/agent/reactions/rel.receipts/dismiss-event",
                    {"event_id": order, "reason": "while the database is down"},
                )
            )
            time.sleep(0.2)
        assert worker.poll() is None, "the worker died with the database"
        embedded_pg.ensure_running(server)

        for status, body in down:
            assert status == 503, (status, body)
            payload = json.loads(body)
            assert payload["code"] == "database_unavailable"
            assert "Traceback" not in body
            assert 'File "' not in body

        # The listener is back on its channel, so a NOTIFY reaches the worker again.
        wait_for(
            lambda: rows(
                server,
                "SELECT 1 FROM pg_stat_activity WHERE application_name = %s"
                " AND query = 'LISTEN eventdesk_events'",
                [APP],
            ),
            timeout=90,
            what="the listener to LISTEN again",
        )
        with db(server) as conn:
            insert_mixed(conn, "after", 1000)
        wait_for(lambda: finished(server), timeout=120, what="the worker to finish")
        assert rows(server, ACTUAL_TOTALS) == rows(server, EXPECTED_TOTALS)
        assert rows(server, ACTUAL_BATCH_TOTALS) == rows(server, EXPECTED_BATCH_TOTALS)
        per_order = rows(
            server,
            "SELECT o.event_id, count(r.event_id) FROM events o LEFT JOIN events r"
            " ON r.event_type = 'Receipt' AND r.data->>'order' = o.event_id::text"
            " WHERE o.event_type = 'Order' GROUP BY 1",
        )
        assert {count for _, count in per_order} == {1}
        backward = rows(
            server,
            "SELECT * FROM rel_bookmark_moves WHERE (new_tx, new_pos) < (old_tx, old_pos)",
        )
        assert backward == []
        assert agent_answer(base, token, "/agent/reactions")[0] == 200
        assert worker.poll() is None
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0
        text = log.read_text()
        assert "retrying in" in text  # the loops backed off ...
        assert "listener connection lost" in text  # ... and so did the listener
        delays = [float(line.rsplit("retrying in ", 1)[1].rstrip("s")) for line in
                  text.splitlines() if "retrying in " in line]  # fmt: skip
        assert max(delays) > min(delays), "the delay between retries never grew"
        events = rows(server, "SELECT count(*) FROM events")[0][0]
        print(
            f"\nFIGURES restart: 1 stop/start of PostgreSQL mid-run, {len(down)} API calls"
            f" while down all 503 database_unavailable, {len(delays)} backed-off retries"
            f" (up to {max(delays):g}s), {events} events checked, {len(per_order)} receipts"
            " exactly once, 0 backward moves"
        )
    finally:
        for process in started:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            process.wait(30)
