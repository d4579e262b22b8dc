"""Rebuilds in a process of their own, beside the worker's live loops, at a lower priority.

A rebuild is CPU work in Python: reading a thousand events, folding them through the
projection's code, building the flush. In the worker's own process it shared the GIL
with the live loops, and its garbage made the interpreter's full collections (tens of
milliseconds, every thread stopped) frequent: the live projection's p99 rose eightfold
while a rebuild built. So ``run_subscribers`` runs its rebuilds in a child,
``run_subscribers --rebuilds-only``, niced (``EVENTDESK_REBUILD_NICE``, default 10) so
that the operating system runs the live loops first when the cores are busy. The child
works the same projections under the same worker id; the parent supervises it:

* it restarts a child that exited on its own, or that could not be started (the
  fork refused: the live loops go on), with a backoff of 1 s doubling to 30 s;
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
from pathlib import Path
from typing import Any

from django.db.backends.signals import connection_created

from config.options import options

logger = logging.getLogger("eventdesk.rebuilds")

#: The flag of ``run_subscribers`` that makes it the rebuild child.
REBUILDS_ONLY = "--rebuilds-only"
#: How often a child that cannot be told of its parent's death looks for it.
PARENT_CHECK_SECONDS = 1.0
#: The longest pause before the child is started again (the pause doubles from 1 s).
MAX_RESTART_DELAY_SECONDS = 30.0
_PR_SET_PDEATHSIG = 1


class RebuildProcess:
    """Supervises the rebuild child of a worker (``run`` is a thread's body)."""

    def __init__(self, names: list[str], owner: str, stop: threading.Event) -> None:
        self.names, self.owner, self.stop = names, owner, stop
        self.child: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        """The child's command line: the same projections, the same worker id. ``-P``:
        ``-m`` would put the current directory first on the import path, where a module
        named like one of ours (``config``) would be imported instead of the worker's."""
        return [
            sys.executable, "-P", "-m", "django", "run_subscribers", REBUILDS_ONLY,
            "--owner", self.owner, "--parent-pid", str(os.getpid()),
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
            started = time.monotonic()
            try:
                child = self.child = subprocess.Popen(self.command(), env=self.environment())
            except OSError as exc:
                # No process (fork refused: EAGAIN, ENOMEM; the interpreter gone in an
                # upgrade): the live loops go on, and the child is tried again later.
                logger.error("rebuilds: could not start the rebuild process (%s); trying"
                             " again in %.0fs", exc, delay)  # fmt: skip
                self.stop.wait(delay)
                delay = min(delay * 2, MAX_RESTART_DELAY_SECONDS)
                continue
            logger.info("rebuilds: running in process %d (nice %+d)", child.pid,
                        options().rebuild_nice)  # fmt: skip
            while child.poll() is None and not self.stop.wait(0.2):
                pass
            if self.stop.is_set():
                self.end()
                return
            if time.monotonic() - started > 60:
                delay = 1.0
            logger.warning("rebuilds: process %d exited with %s; starting another in %.0fs",
                           child.pid, child.returncode, delay)  # fmt: skip
            self.stop.wait(delay)
            delay = min(delay * 2, MAX_RESTART_DELAY_SECONDS)

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
    ``EVENTDESK_REBUILD_NICE`` than the process was, and so are its database backends
    where this host runs them and lets us (``lower_backend_priority``)."""
    with contextlib.suppress(OSError):
        os.nice(options().rebuild_nice)
    connection_created.connect(_lower_backend, dispatch_uid="eventdesk-rebuild-backend-nice")


def _lower_backend(sender: Any, connection: Any, **kwargs: Any) -> None:
    lower_backend_priority(connection.connection)


def lower_backend_priority(conn: Any) -> bool:
    """Give ``conn``'s database backend this process's priority when it has more (a
    rebuild's backend, the process niced): PostgreSQL has no priority of its own, and the
    rebuild's queries otherwise compete with the live projections' for the cores on a
    host that runs both. Only for a server on this host (a Unix socket) whose process
    ``backend_pid`` is that backend (``postgres: <user> <database> [local]``), and only
    where the operating system lets us (the same user, or root). True when the backend
    runs at this process's priority (or below) now."""
    info = conn.info
    if not sys.platform.startswith("linux") or not str(info.host).startswith("/"):
        return False  # over TCP: another host, or another process namespace
    pid = int(info.backend_pid)
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
        if not title.startswith("postgres:") or f" {info.user} {info.dbname} [local]" not in title:
            return False
        ours = os.getpriority(os.PRIO_PROCESS, 0)
        if os.getpriority(os.PRIO_PROCESS, pid) < ours:
            os.setpriority(os.PRIO_PROCESS, pid, ours)
    except (OSError, UnicodeDecodeError) as exc:
        logger.debug("rebuilds: backend %d keeps its priority (%s)", pid, exc)
        return False
    return True


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
