"""A SIGTERM to `make run`'s process group stops everything (issue 9, item 4).

``run_subscribers`` used to hang on SIGTERM now and then, its threads parked on a lock:
its signal handler set Events, and so took their locks, which the main thread (or the
handler itself, on the second SIGTERM) could already hold. See ``subscribers/shutdown.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from django.db import connection

from eventstore.sql import HEAD
from subscribers.models import Bookmark
from subscribers.registry import load_registry
from tests.support import ROOT, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

POLL_SECONDS = 0.5
SHUTDOWN_SECONDS = 10
#: The demo, quick: a fast fake LLM, and the poison wedges after two quick attempts.
QUICK_DEMO = {
    "EVENTDESK_POLL_INTERVAL_SECONDS": str(POLL_SECONDS),
    "EVENTDESK_SHUTDOWN_TIMEOUT_SECONDS": str(SHUTDOWN_SECONDS),
    "EVENTDESK_DEMO_LLM_LATENCY_SECONDS": "0.001",
    "EVENTDESK_MAX_ATTEMPTS": "2",
    "EVENTDESK_RETRY_BASE_SECONDS": "0.01",
}
#: The worker's and uvicorn's shutdown bounds, and room for a busy machine.
GROUP_EXIT_DEADLINE = SHUTDOWN_SECONDS + 60


def run_script(port: int) -> list[str]:
    return ["bash", "scripts/run.sh", "127.0.0.1", str(port)]


def demo_settled() -> bool:
    """Every demo subscriber has a bookmark, at the head of the store or wedged."""
    with connection.cursor() as cursor:
        cursor.execute(HEAD)
        head = cursor.fetchone()
    names = [entry.name for entry in load_registry()]
    bookmarks = list(Bookmark.objects.filter(subscriber_name__in=names))
    return (
        head is not None
        and len(bookmarks) == len(names)
        and all(
            b.status == "wedged" or (b.last_transaction_id, b.last_position) == tuple(head)
            for b in bookmarks
        )
    )


def polled_since(application_name: str, moment: Any, seconds: float) -> bool:
    """A session of ``application_name`` started a query ``seconds`` after ``moment``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = %s AND query_start > %s + make_interval(secs => %s)",
            [application_name, moment, seconds],
        )
        return bool(cursor.fetchone()[0])


def group_gone(process: subprocess.Popen[bytes]) -> bool:
    process.poll()  # reap the leader: a zombie still counts as a member of its group
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_sigterm_to_the_group_stops_console_and_worker_after_idling(launch_console) -> None:
    served = launch_console(run_script, **QUICK_DEMO)
    wait_for(demo_settled, timeout=180, what="the demo to be worked (caught up or wedged)")
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        idle_since = cursor.fetchone()[0]
    # Idle past the poll interval, seen from the database: the worker has gone round its
    # idle loop (and its main thread round its half-second wait) several times since.
    wait_for(
        lambda: polled_since(served.application_name, idle_since, 4 * POLL_SECONDS),
        what="the idle worker to poll again",
    )
    assert served.process.poll() is None, served.output()

    os.killpg(served.process.pid, signal.SIGTERM)
    try:
        wait_for(lambda: group_gone(served.process), timeout=GROUP_EXIT_DEADLINE)
    except AssertionError:
        pytest.fail(f"the group did not exit after SIGTERM:\n{served.output()}")
    output = served.output()
    assert "Finished server process" in output
    assert "did not finish within" not in output  # the worker stopped, not abandoned


# The handler's moment of danger, made certain: the main thread gets the SIGTERM right
# after Event.wait in Worker.run has re-acquired the Event's lock (CPython's
# Condition._acquire_restore), as happens now and then when the signal lands just as
# the half-second wait ends.
SIGTERM_WHILE_THE_LOCK_IS_HELD = """
import os, signal, sys, threading

restore = threading.Condition._acquire_restore
rounds = []

def restore_then_sigterm(self, state):
    restore(self, state)
    caller = sys._getframe(3).f_code  # Condition.wait <- Event.wait <- caller
    if caller.co_name == "run" and caller.co_filename.endswith("subscribers/worker.py"):
        rounds.append(1)
        if len(rounds) == 3:  # after a second of idling
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(10_000):  # the handler runs at one of these, the lock held
                pass

threading.Condition._acquire_restore = restore_then_sigterm
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
from django.core.management import execute_from_command_line
execute_from_command_line(["manage.py", "run_subscribers"])
print("run_subscribers returned")
"""


def test_run_subscribers_stops_when_sigterm_lands_while_its_main_thread_holds_the_lock(
    served_env,
) -> None:
    env = served_env(
        EVENTDESK_SUBSCRIBERS="demo.projections.RunBoard",
        EVENTDESK_POLL_INTERVAL_SECONDS=str(POLL_SECONDS),
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(SIGTERM_WHILE_THE_LOCK_IS_HELD)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=GROUP_EXIT_DEADLINE,
            check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as expired:
        raise AssertionError(f"run_subscribers hung on SIGTERM: {expired.stderr!r}") from expired
    assert done.returncode == 0, done.stderr
    assert "run_subscribers returned" in done.stdout
