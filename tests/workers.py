"""Workers for the tests: passes of ``run_once``, a worker in threads of this process, and
``manage.py run_subscribers`` in processes of their own on the test database."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.conf import settings

from subscribers.registry import SubscriberRegistry, build_registry
from subscribers.worker import Worker
from tests.subscribers import GatedReaction, StreamJobs
from tests.support import ROOT, wait_for


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
    """A ``DATABASE_URL`` for the test database, its sessions named ``application_name``."""
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
    """``manage.py run_subscribers`` run to its end (``--once``, say), its output captured."""
    return subprocess.run(
        [sys.executable, "manage.py", "run_subscribers", *args],
        cwd=ROOT,
        env=worker_env(subscribers, **options),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def stream_reaction(base: type[StreamJobs] = StreamJobs, **attrs: Any) -> SubscriberRegistry:
    """A registry of one stream-ordered reaction: ``base`` with ``attrs`` overridden."""
    return build_registry([type(base.__name__, (base,), attrs)()])


def start_pooled_worker(
    database_url: str,
    subscribers: Sequence[str],
    log: Path,
    *,
    poll: float,
    direct_listen: bool,
    **options: str,
) -> subprocess.Popen[bytes]:
    """``run_subscribers`` with ``database_url`` through a transaction-mode pooler
    (EVENTDESK_DB_POOLER=transaction) and, with ``direct_listen``,
    EVENTDESK_LISTEN_DATABASE_URL straight to the test database."""
    env = worker_env(subscribers, poll_interval_seconds=str(poll), db_pooler="transaction")
    env.update({f"EVENTDESK_{key.upper()}": value for key, value in options.items()})
    env["DATABASE_URL"] = database_url
    if direct_listen:
        env["EVENTDESK_LISTEN_DATABASE_URL"] = database_url_for_tests("eventdesk-listen")
    with open(log, "wb") as output:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "manage.py", "run_subscribers"],
            cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
