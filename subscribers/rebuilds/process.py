"""Rebuilds in a process of their own, beside the worker's live loops, at a lower priority.

A rebuild is CPU work in Python: reading a thousand events, folding them through the
projection's code, building the flush. In the worker's own process it shared the GIL
with the live loops, and its garbage made the interpreter's full collections (tens of
milliseconds, every thread stopped) frequent: the live projection's p99 rose eightfold
while a rebuild built. So ``run_subscribers`` runs its rebuilds in a child,
``run_subscribers --rebuilds-only``, niced (``EVENTDESK_REBUILD_NICE``, default 10, from
its first instruction: its start-up is CPU work too) so that the operating system runs
the live loops first when the cores are busy. The child works the same projections
under the same worker id; the parent supervises it:

* it starts the child only while there is rebuild work for its projections (a rebuild
  under way, or kept tables past their window to drop: one small query a second), and
  the child ends itself once there has been none for ``IDLE_EXIT_SECONDS``: a worker
  with no rebuild has no second process, no second pool and no second poll;
* it restarts a child that failed (backoff 1 s doubling to 30 s);
* on stop, it sends the child SIGTERM (its current step finishes, like the loops'
  batches) and waits ``EVENTDESK_SHUTDOWN_TIMEOUT_SECONDS`` before SIGKILL;
* the child dies with it: on Linux the kernel sends it SIGKILL when its parent dies
  (``PR_SET_PDEATHSIG``), so a SIGKILLed worker leaves no rebuild running, exactly as
  when the rebuild was one of its threads; elsewhere the child checks every second.

``EVENTDESK_REBUILD_PROCESS=0`` keeps the rebuilds in a thread of the worker (as tests
that run a ``Worker`` in-process do).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from django.db import InterfaceError, OperationalError, connection

import subscribers.rebuilds.sql as sql
from config.options import options
from subscribers.connection import discard_connection

logger = logging.getLogger("eventdesk.rebuilds")

#: The flag of ``run_subscribers`` that makes it the rebuild child.
REBUILDS_ONLY = "--rebuilds-only"
#: How often a child that cannot be told of its parent's death looks for it.
PARENT_CHECK_SECONDS = 1.0
#: The child ends once it has found no rebuild work for this long.
IDLE_EXIT_SECONDS = 10.0
#: The child's first instructions: nice, then Django's command line (``-P``: ``-c`` would
#: put the current directory first on the import path, where a module named like one of
#: ours, ``config``, would be imported instead of the worker's).
_BOOT = (
    "import os, sys; os.nice(int(sys.argv[1]));"
    " from django.core.management import execute_from_command_line;"
    " execute_from_command_line(['django-admin', *sys.argv[2:]])"
)
_PR_SET_PDEATHSIG = 1


class RebuildProcess:
    """Supervises the rebuild child of a worker (``run`` is a thread's body)."""

    def __init__(self, names: list[str], owner: str, stop: threading.Event) -> None:
        self.names, self.owner, self.stop = names, owner, stop
        self.child: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        """The child's command line: the same projections, the same worker id."""
        return [
            sys.executable, "-P", "-c", _BOOT, str(options().rebuild_nice),
            "run_subscribers", REBUILDS_ONLY, "--owner", self.owner,
            "--parent-pid", str(os.getpid()),
            *(f"--subscriber={name}" for name in self.names),
        ]  # fmt: skip

    def environment(self) -> dict[str, str]:
        """The worker's environment, with its import path (the child imports the same
        settings and subscribers however the worker was started)."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(path for path in sys.path if path)
        return env

    def run(self) -> None:
        delay = 1.0
        while not self.stop.is_set():
            if not self._work_waiting():
                self.stop.wait(min(options().poll_interval_seconds, 1.0))
                continue
            started = time.monotonic()
            child = self.child = subprocess.Popen(self.command(), env=self.environment())
            logger.info("rebuilds: running in process %d (nice %+d)", child.pid,
                        options().rebuild_nice)  # fmt: skip
            while child.poll() is None and not self.stop.wait(0.2):
                pass
            if self.stop.is_set():
                self.end()
                return
            if child.returncode == 0:  # no rebuild work left: it ended itself
                delay = 1.0
                continue
            if time.monotonic() - started > 60:
                delay = 1.0
            logger.warning("rebuilds: process %d exited with %s; starting another in %.0fs",
                           child.pid, child.returncode, delay)  # fmt: skip
            self.stop.wait(delay)
            delay = min(delay * 2, 30.0)

    def _work_waiting(self) -> bool:
        try:
            return rebuild_work_waiting(self.names)
        except (OperationalError, InterfaceError) as exc:
            # The loops report a lost database; a rebuild only starts a little later.
            logger.debug("rebuilds: could not look for rebuild work (%s)", exc)
            discard_connection()
            return False

    def end(self) -> None:
        """SIGTERM, then SIGKILL after the shutdown timeout."""
        child = self.child
        if child is None or child.poll() is not None:
            return
        child.terminate()
        try:
            child.wait(options().shutdown_timeout_seconds)
        except subprocess.TimeoutExpired:
            logger.warning("rebuilds: process %d did not stop in time; killed", child.pid)
            child.kill()
            child.wait()


def lower_priority() -> None:
    """``--rebuilds-only``, the worker's child or one started by hand: ``nice`` lower by
    ``EVENTDESK_REBUILD_NICE`` than the process was."""
    with contextlib.suppress(OSError):
        os.nice(options().rebuild_nice)


def become_rebuild_child(parent_pid: int, request_stop: Callable[[], None]) -> None:
    """In the child: an end with the parent (see the module)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the line above
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_SECONDS)
        logger.warning("rebuilds: the worker (process %d) is gone; stopping", parent_pid)
        request_stop()

    threading.Thread(target=watch, name="eventdesk-parent-watch", daemon=True).start()


def rebuild_work_waiting(names: list[str]) -> bool:
    """Whether a rebuild of ``names`` is under way, or kept tables wait to be dropped."""
    from subscribers.models import Rebuild

    phases = [str(phase) for phase in Rebuild.WORKED_PHASES]
    with connection.cursor() as cursor:
        cursor.execute(sql.WORK_WAITING, {"names": names, "phases": phases})
        row = cursor.fetchone()
    return bool(row and row[0])
