"""Helpers for the worker tests: the applied-events table, appends, waits, worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import connection

from eventstore import NewEvent, RecordedEvent, StreamAppend
from eventstore.postgres import PostgresEventStore
from subscribers.models import Bookmark
from subscribers.registry import SubscriberRegistry
from subscribers.worker import Worker
from tests.subscribers_fixtures import APPLIED_TABLE, CREATE_APPLIED_TABLE, GatedReaction

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def applied_table(transactional_db: None) -> None:
    """An empty ``test_applied_events`` table (not a Django model: the flush leaves it)."""
    with connection.cursor() as cursor:
        cursor.execute(CREATE_APPLIED_TABLE)
    GatedReaction.reset()


def append(stream: str, *types: str, **data: Any) -> list[RecordedEvent]:
    events = [NewEvent(kind, dict(data)) for kind in types]
    return PostgresEventStore().append_streams([StreamAppend(stream, events)])


def append_many(count: int, kind: str = "Tick", per_append: int = 10) -> list[RecordedEvent]:
    recorded: list[RecordedEvent] = []
    for start in range(0, count, per_append):
        events = [
            NewEvent(kind, {"amount": n}) for n in range(start, min(count, start + per_append))
        ]
        recorded += PostgresEventStore().append_streams([StreamAppend(f"s-{start}", events)])
    return recorded


def applied(subscriber: str) -> list[tuple[Any, ...]]:
    """(event_id, position, event_type) of every row the subscriber wrote, in write order."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT event_id, position, event_type FROM {APPLIED_TABLE}"
            " WHERE subscriber = %s ORDER BY seq",
            [subscriber],
        )
        return list(cursor.fetchall())


def bookmark(name: str) -> Bookmark:
    return Bookmark.objects.get(subscriber_name=name)


def wait_for(condition: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    """Poll ``condition`` until it is truthy; fail after a generous timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except ObjectDoesNotExist:  # a bookmark not created yet
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.05)


def drain(registry: SubscriberRegistry, until: Callable[[], Any], what: str = "") -> Any:
    """``run_once`` until ``until()`` holds.

    The horizon is cluster-wide (transaction ids are): a transaction open in another
    database of the same server (a parallel test run) holds every reader back for a
    moment, so a single pass may legitimately see nothing yet.
    """

    def attempt() -> Any:
        Worker(registry).run_once()
        return until()

    return wait_for(attempt, what=what)


@contextmanager
def running_worker(registry: SubscriberRegistry) -> Iterator[Worker]:
    """A worker in background threads of this process, stopped on exit."""
    worker = Worker(registry)
    worker.start()
    try:
        yield worker
    finally:
        worker.request_stop()
        GatedReaction.gate.set()  # a test that failed mid-handle must not hang the stop
        assert worker.join(60), "the worker did not stop"
        assert worker.crashed is None, worker.crashed


def database_url_for_tests(application_name: str = "") -> str:
    db = settings.DATABASES["default"]
    auth = quote(db["USER"], safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = quote(db["HOST"], safe="")
    port = f":{db['PORT']}" if db.get("PORT") else ""
    query = f"?application_name={quote(application_name)}" if application_name else ""
    return f"postgresql://{auth}@{host}{port}/{quote(db['NAME'], safe='')}{query}"


def worker_env(
    subscribers: Sequence[str], application_name_hint: str = "", **options: str
) -> dict[str, str]:
    """The environment of a worker process on the test database (its sessions named
    ``application_name_hint`` in pg_stat_activity, when given)."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url_for_tests(application_name_hint),
        EVENTDESK_SUBSCRIBERS=",".join(subscribers),
        EVENTDESK_POLL_INTERVAL_SECONDS="0.2",
        EVENTDESK_LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    env.update({f"EVENTDESK_{key.upper()}": value for key, value in options.items()})
    return env


def start_worker(
    subscribers: Sequence[str],
    *args: str,
    log: Path | None = None,
    application_name_hint: str = "",
    **options: str,
) -> subprocess.Popen[bytes]:
    """``manage.py run_subscribers`` in a process of its own, on the test database."""
    with open(log or os.devnull, "wb") as output:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "manage.py", "run_subscribers", *args],
            cwd=ROOT,
            env=worker_env(subscribers, application_name_hint, **options),
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def run_worker(
    subscribers: Sequence[str], *args: str, **options: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "run_subscribers", *args],
        cwd=ROOT,
        env=worker_env(subscribers, **options),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
