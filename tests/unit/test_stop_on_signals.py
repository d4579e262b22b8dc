"""SIGTERM stops the worker even when it lands while the main thread holds the stop
Event's lock (issue 9, item 4: `make run` hung on SIGTERM).

``Event.wait`` holds the Event's non-reentrant lock between waking up and returning,
and the worker's main thread waits on its stop Event every half second. A handler that
called ``Event.set`` at that moment waited for its own thread forever. Each scenario runs
in a child process, so that a deadlock fails the test at a deadline instead of hanging
the suite, and pytest's own signal handlers stay untouched.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Generous: the child needs milliseconds; only a deadlock comes near it.
DEADLINE_SECONDS = 60

HOLDING_THE_LOCK = """
import os, signal, threading
from subscribers.shutdown import stop_on_signals

stop = threading.Event()
with stop_on_signals(stop.set):
    for round in range({rounds}):
        # Hold the Event's lock as Event.wait does between waking up and returning, and
        # get a SIGTERM: Python runs the handler in this thread at one of the next
        # bytecodes, with the lock still held.
        with stop._cond:
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(10_000):
                pass
        assert stop.wait(30), f"round {{round}}: the SIGTERM did not request a stop"
        stop.clear()
assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, "the handler was not restored"
assert signal.set_wakeup_fd(-1) == -1, "the wake-up fd was not restored"
print("stopped every time")
"""


def run_child(script: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(script)],
            cwd=ROOT, capture_output=True, text=True, timeout=DEADLINE_SECONDS, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as expired:
        raise AssertionError(
            f"deadlocked: no exit within {DEADLINE_SECONDS}s (stderr: {expired.stderr!r})"
        ) from expired


def test_a_sigterm_while_the_stop_events_lock_is_held_still_stops() -> None:
    done = run_child(HOLDING_THE_LOCK.format(rounds=1))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "stopped every time"


def test_hundreds_of_sigterms_each_request_a_stop() -> None:
    done = run_child(HOLDING_THE_LOCK.format(rounds=300))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "stopped every time"
