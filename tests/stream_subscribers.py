"""Stream-ordered reactions used by the tests (worker processes load them by dotted path).

Each answers a ``Job`` with a ``Handled`` event appended to ``done-<the job's stream>``,
so the store itself shows what was handled, how many times, and in which order per
stream (the versions of ``done-<stream>``). In a test process they also note every
call, and any two calls on one stream at once, in class attributes.

A job's data may ask for a failure: ``poison`` (always), ``fail`` (the first N
attempts in this process), ``sleep`` (seconds inside ``handle``).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from typing import Any, ClassVar

from eventstore import NewEvent, RecordedEvent, StreamAppend


class StreamJobs:
    """Stream-ordered, concurrency 4 (``TEST_STREAM_CONCURRENCY`` in a worker process)."""

    name = "test.streams"
    event_types: tuple[str, ...] | None = ("Job",)
    ordering = "stream"
    concurrency = int(os.environ.get("TEST_STREAM_CONCURRENCY", "4"))

    lock: ClassVar[threading.Lock] = threading.Lock()
    calls: ClassVar[list[uuid.UUID]] = []
    attempts: ClassVar[Counter[uuid.UUID]] = Counter()
    active: ClassVar[set[str]] = set()
    overlaps: ClassVar[list[str]] = []
    most_at_once: ClassVar[int] = 0
    running: ClassVar[int] = 0

    @classmethod
    def reset(cls) -> None:
        with cls.lock:
            cls.calls.clear()
            cls.attempts.clear()
            cls.active.clear()
            cls.overlaps.clear()
            cls.most_at_once = cls.running = 0

    def handle(self, event: RecordedEvent) -> list[StreamAppend] | None:
        cls = StreamJobs  # subclasses share the notes (and scalars must not be shadowed)
        with cls.lock:
            if event.stream_id in cls.active:
                cls.overlaps.append(event.stream_id)
            cls.active.add(event.stream_id)
            cls.calls.append(event.event_id)
            cls.attempts[event.event_id] += 1
            attempt = cls.attempts[event.event_id]
            cls.running += 1
            cls.most_at_once = max(cls.most_at_once, cls.running)
        try:
            time.sleep(float(event.data.get("sleep", 0)))
            if event.data.get("poison") or attempt <= int(event.data.get("fail", 0)):
                raise RuntimeError(f"job {event.event_id} failed (attempt {attempt})")
            return [StreamAppend(f"done-{event.stream_id}", [handled(event)])]
        finally:
            with cls.lock:
                cls.active.discard(event.stream_id)
                cls.running -= 1


def handled(event: RecordedEvent) -> NewEvent:
    """The ``Handled`` answer to ``event``."""
    data: dict[str, Any] = {
        "event_id": str(event.event_id),
        "stream": event.stream_id,
        "tx": event.transaction_id,
        "pos": event.position,
    }
    return NewEvent("Handled", data)


class EveryEvent(StreamJobs):
    """``event_types = None``: takes in every event, DecisionRegistered included; answers
    only Jobs (and never its own Handled events)."""

    name = "test.streams_all"
    event_types = None
    seen: ClassVar[list[tuple[str, str]]] = []

    def handle(self, event: RecordedEvent) -> list[StreamAppend] | None:
        with StreamJobs.lock:
            self.seen.append((event.event_type, event.stream_id))
        if event.event_type != "Job":
            return None
        return super().handle(event)
