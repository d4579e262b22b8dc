"""What a projection loop is doing now, so the worker can give up on a batch that hangs.

A hung ``apply`` (a client library deadlocked, a socket with no timeout) cannot be
interrupted from another thread in Python. The worker's watchdog therefore ends the
batch's database session (its transaction rolls back), records the timeout on the
bookmark like any failure (retried, then wedged), and starts a fresh loop in place of
the stuck one, so the other projections go on.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from dataclasses import dataclass, replace
from datetime import timedelta

from django.utils import timezone

from eventstore.types import RecordedEvent
from subscribers.bookmarks import BookmarkState
from subscribers.heartbeat import Doing
from subscribers.registry import Registered


@dataclass(frozen=True)
class Busy:
    """One projection batch in flight: where it started, its session, the event being applied."""

    entry: Registered
    state: BookmarkState
    backend_pid: int
    event: RecordedEvent
    since: float
    thread_id: int

    def stack(self) -> str:
        """Where the stuck thread is now (the operator's best clue), or '' if it is gone."""
        frame = sys._current_frames().get(self.thread_id)
        if frame is None:
            return ""
        return "Stack of the abandoned batch:\n" + "".join(traceback.format_stack(frame))


class BatchWatch:
    """The batch one loop has in flight (set by the loop, read by the watchdog)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy: Busy | None = None
        # The event being applied: written per event on the hot path, so a plain
        # attribute (assignment is atomic) rather than a lock and a new Busy.
        self._event: RecordedEvent | None = None

    def begin(
        self, entry: Registered, state: BookmarkState, backend_pid: int, first: RecordedEvent
    ) -> None:
        with self._lock:
            self._event = first
            self._busy = Busy(
                entry, state, backend_pid, first, time.monotonic(), threading.get_ident()
            )

    def applying(self, event: RecordedEvent) -> None:
        self._event = event

    def end(self) -> None:
        with self._lock:
            self._busy = None

    def current(self) -> Doing | None:
        """The batch in flight as the heartbeat shows it (the event being applied)."""
        with self._lock:
            busy = self._busy
        if busy is None:
            return None
        event = self._event or busy.event
        attempt = busy.state.attempts + 1 if event.event_id == busy.state.failing_event_id else 1
        since = timezone.now() - timedelta(seconds=time.monotonic() - busy.since)
        return Doing(busy.entry.name, event.event_id, since, attempt)

    def overdue(self, timeout: float) -> Busy | None:
        """The batch in flight if it has run longer than ``timeout`` (handed out once)."""
        with self._lock:
            busy = self._busy
            if busy is None or time.monotonic() - busy.since <= timeout:
                return None
            self._busy = None
            return replace(busy, event=self._event or busy.event)
