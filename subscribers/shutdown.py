"""SIGTERM and SIGINT stop the worker, without a lock ever taken in a signal handler.

Python runs a signal handler in the main thread, between two bytecodes, wherever that
thread is: possibly while it holds a lock, possibly inside the handler itself when a
second signal comes. ``threading.Event.set`` takes the Event's lock, a plain
non-reentrant one. The worker's handler used to call ``request_stop()``, which sets the
stop Event and every loop's wake-up Event, so it waited for its own thread forever when

* the signal landed while the main thread was inside ``stop_event.wait(0.5)`` between
  re-acquiring the Event's lock and returning, or
* a second SIGTERM (the group's, then ``scripts/run.sh``'s trap) landed while the first
  handler held a loop's wake-up lock inside ``Event.set``.

Either way ``make run`` never exited after a SIGTERM to its group, with
``run_subscribers`` parked on a futex (issue 9, item 4; py-spy showed the second case).

So the handler does nothing but let the signal through: ``signal.set_wakeup_fd``
writes the signal's number to a pipe at the C level, and a small thread of our own,
blocked on that pipe, makes the stop request. Any lock it takes, it merely waits for.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from types import FrameType

#: What the worker stops on: ``kill`` (and a process manager) and Ctrl-C.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

_CLOSE = b"\xff"  # not a signal number: the watcher thread's own cue to end


def _let_through(signum: int, frame: FrameType | None) -> None:
    """The Python-level handler: replaces the default action (die); does nothing else."""


@contextlib.contextmanager
def stop_on_signals(
    request_stop: Callable[[], None], signals: Sequence[signal.Signals] = STOP_SIGNALS
) -> Iterator[None]:
    """While inside, each of ``signals`` calls ``request_stop()`` from a thread of its own.

    Call from the main thread (signal handlers can be set only there). On exit the
    previous handlers and wake-up fd are restored.
    """
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)  # set_wakeup_fd requires it
    previous_fd = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    previous = {sig: signal.signal(sig, _let_through) for sig in signals}
    wanted = {int(sig) for sig in signals}
    watcher = threading.Thread(
        target=_watch, args=(read_end, wanted, request_stop), name="eventdesk-signals", daemon=True
    )
    watcher.start()
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(previous_fd)
        while True:
            try:
                os.write(write_end, _CLOSE)
                break
            except BlockingIOError:  # a full pipe: the watcher is draining it
                select.select([], [write_end], [])
        watcher.join()
        os.close(read_end)
        os.close(write_end)


def _watch(read_end: int, wanted: set[int], request_stop: Callable[[], None]) -> None:
    while True:
        select.select([read_end], [], [])
        received = os.read(read_end, 512)
        # Another handler of the process (pytest-timeout's SIGALRM, say) writes here too.
        if wanted.intersection(received):
            request_stop()
        if _CLOSE in received:
            return
