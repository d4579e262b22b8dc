"""The worker proves its wake-ups arrive: a NOTIFY of its own through the ordinary
connection must reach its listener. When it does not (here: a listen connection to
another database, which no NOTIFY of ours reaches), the heartbeat, the log (once, with
the cause and the setting) and the gauge say so; when it does, they say that too.

The same through a real PgBouncer in transaction mode: tests/integration/test_pgbouncer.py.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import pytest
from django.db import connection
from django.test import override_settings

from subscribers.heartbeat import live_workers
from subscribers.metrics import WorkerMetrics
from subscribers.registry import build_registry
from subscribers.worker import Worker
from tests.support import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("applied_table")]

FAST = {"poll_interval_seconds": 0.2, "wakeup_check_seconds": 1.0}


def other_database_url() -> str:
    """The test server, but its ``postgres`` database: LISTEN works, our NOTIFYs never come."""
    db = connection.settings_dict
    port = f":{db['PORT']}" if db.get("PORT") else ""
    auth = quote(db["USER"], safe="")
    if db.get("PASSWORD"):  # a server with passwords (make test-pg15's cluster)
        auth += ":" + quote(db["PASSWORD"], safe="")
    return f"postgresql://{auth}@{quote(db['HOST'], safe='')}{port}/postgres"


def wakeups_of(worker: Worker) -> Any:
    found = [w for w in live_workers() if w.worker_id == worker.owner]
    return found[0] if found and found[0].wakeups_working is not None else None


def run(settings: dict[str, Any]) -> tuple[Any, WorkerMetrics]:
    metrics = WorkerMetrics()
    with override_settings(EVENTDESK=settings):
        worker = Worker(build_registry(["tests.subscribers.RecordingProjection"]), metrics=metrics)
        worker.start()
        try:
            info = wait_for(lambda: wakeups_of(worker), timeout=60, what="a concluded check")
        finally:
            worker.request_stop()
            assert worker.join(60)
    assert worker.crashed is None, worker.crashed
    return info, metrics


def test_wakeups_that_arrive_are_reported_working() -> None:
    info, metrics = run(FAST)
    assert info.wakeups_working is True
    assert info.wakeups_text == ""
    assert info.as_json()["wakeups_working"] is True
    text = metrics.exposition().decode()
    assert 'eventdesk_worker_wakeups_working{listen_connection="DATABASE_URL"} 1.0' in text


def test_wakeups_that_never_arrive_are_said_once_in_log_heartbeat_and_gauge(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="eventdesk.listener")
    settings = {**FAST, "listen_database_url": other_database_url()}
    info, metrics = run(settings)
    assert info.wakeups_working is False
    assert info.wakeups_text == "wake-ups are not arriving; polling every 0.2 s"
    text = metrics.exposition().decode()
    assert (
        'eventdesk_worker_wakeups_working{listen_connection="EVENTDESK_LISTEN_DATABASE_URL"} 0.0'
        in text
    )
    said = [r.getMessage() for r in caplog.records if "wake-ups are not arriving" in r.getMessage()]
    assert len(said) == 1, said
    assert "EVENTDESK_LISTEN_DATABASE_URL" in said[0]
    assert "polling every 0.2 s" in said[0]
