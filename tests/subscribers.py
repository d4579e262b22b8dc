"""Subscribers used by the worker tests (selected by dotted path or built directly).

``RecordingProjection`` and friends write one row per applied event to
``test_applied_events`` (no unique constraint: an event applied twice shows up as
two rows); ``applied`` reads them back. The table is made by the ``applied_table``
fixture (tests/conftest.py).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from typing import Any, ClassVar

from django.db import connection

from eventstore import NO_STREAM, NewEvent, RecordedEvent, StreamAppend
from eventstore.models import Event
from tests.support import raw_connection

APPLIED_TABLE = "test_applied_events"
CREATE_APPLIED_TABLE = f"""
DROP TABLE IF EXISTS {APPLIED_TABLE};
CREATE TABLE {APPLIED_TABLE} (
    seq bigint GENERATED ALWAYS AS IDENTITY, subscriber text NOT NULL, event_id uuid NOT NULL,
    position bigint NOT NULL, event_type text NOT NULL, amount bigint NOT NULL DEFAULT 0
)
"""


def record(name: str, event: RecordedEvent) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {APPLIED_TABLE} (subscriber, event_id, position, event_type, amount)"
            " VALUES (%s, %s, %s, %s, %s)",
            [name, event.event_id, event.position, event.event_type, event.data.get("amount", 0)],
        )


def applied(subscriber: str) -> list[tuple[Any, ...]]:
    """(event_id, position, event_type) of every row the subscriber wrote, in write order."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT event_id, position, event_type FROM {APPLIED_TABLE}"
            " WHERE subscriber = %s ORDER BY seq",
            [subscriber],
        )
        return list(cursor.fetchall())


class RecordingProjection:
    """Records each event it applies (as do the projections that extend it)."""

    name = "test.recorder"
    batch_size = 10

    def apply(self, event: RecordedEvent) -> None:
        record(self.name, event)


class SlowRecordingProjection(RecordingProjection):
    """Slow enough per event that a kill lands in the middle of a batch."""

    name = "test.slow_recorder"
    batch_size = 25

    def apply(self, event: RecordedEvent) -> None:
        super().apply(event)
        time.sleep(0.02)


class TypedProjection(RecordingProjection):
    name = "test.typed"
    event_types = ("Wanted",)
    batch_size = 5


class BatchProjection:
    """Uses apply_batch; refuses events marked poison (as a whole batch, like a bulk upsert)."""

    name = "test.batch"
    batch_size = 10

    def apply_batch(self, events: list[RecordedEvent]) -> None:
        if any(event.data.get("poison") for event in events):
            raise ValueError("batch contains a poison event")
        for event in events:
            record(self.name, event)


class FragileProjection(RecordingProjection):
    name = "test.fragile"

    def apply(self, event: RecordedEvent) -> None:
        super().apply(event)
        if event.data.get("poison"):
            raise ValueError(f"cannot project {event.event_id}")


class EchoReaction:
    """Answers each Ping with a Pong on a stream of its own (appended exactly once)."""

    name = "test.echo"
    event_types = ("Ping",)
    batch_size = 1

    def handle(self, event: RecordedEvent) -> list[StreamAppend]:
        if event.data.get("poison"):
            raise RuntimeError("the echo service rejects this ping (HTTP 422)")
        pong = NewEvent("Pong", {"ping": str(event.event_id)})
        return [StreamAppend(f"pong-{event.event_id}", [pong], NO_STREAM)]


class SlowEchoReaction(EchoReaction):
    name = "test.slow_echo"

    def handle(self, event: RecordedEvent) -> list[StreamAppend]:
        time.sleep(0.05)
        return super().handle(event)


def _open_transactions() -> list[tuple[Any, ...]]:
    """The other backends of this database in a transaction: pid, xid, since when."""
    with raw_connection() as probe:
        return probe.execute(
            "SELECT pid, backend_xid::text, xact_start FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND (state LIKE 'idle in transaction%%' OR backend_xid IS NOT NULL"
            "      OR backend_xmin IS NOT NULL)"
        ).fetchall()


class GatedReaction:
    """Blocks in ``handle`` until the test opens the gate; notes what it saw from inside."""

    name = "test.gated"
    event_types = ("Ping",)
    batch_size = 1

    entered = threading.Event()
    gate = threading.Event()
    exited = threading.Event()
    observations: list[dict[str, Any]] = []

    @classmethod
    def reset(cls) -> None:
        cls.entered.clear()
        cls.gate.clear()
        cls.exited.clear()
        cls.observations.clear()

    def handle(self, event: RecordedEvent) -> list[StreamAppend]:
        seen: dict[str, Any] = {
            "in_atomic_block": connection.in_atomic_block,
            "django_connection_open": connection.connection is not None,
        }
        before = _open_transactions()
        self.observations.append(seen)
        self.entered.set()
        if not self.gate.wait(60):
            raise TimeoutError("the test never opened the gate")
        # Held across the call: the same transaction open at its start and at its end (a
        # short write of another thread, a heartbeat, may be in flight at either moment).
        after = set(_open_transactions())
        seen["transactions_open"] = [row for row in before if row in after]
        self.exited.set()
        pong = NewEvent("Pong", {"ping": str(event.event_id)})
        return [StreamAppend(f"pong-{event.event_id}", [pong], NO_STREAM)]


# --- stream-ordered reactions --------------------------------------------------------
# Each answers a ``Job`` with a ``Handled`` event appended to ``done-<the job's stream>``,
# so the store itself shows what was handled, how many times, and in which order per
# stream (the versions of ``done-<stream>``). In a test process they also note every
# call, and any two calls on one stream at once, in class attributes. A job's data may
# ask for a failure: ``poison`` (always), ``fail`` (the first N attempts in this
# process), ``sleep`` (seconds inside ``handle``).


class StreamJobs:
    """Stream-ordered, concurrency 4."""

    name = "test.streams"
    event_types: tuple[str, ...] | None = ("Job",)
    ordering = "stream"
    concurrency = 4

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


#: ``StreamJobs`` by dotted path, as a configuration names it.
STREAM_JOBS = "tests.subscribers.StreamJobs"


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


class WideStreamJobs(StreamJobs):
    """Concurrency 16 (the crash test's workers)."""

    concurrency = 16


class WiderStreamJobs(StreamJobs):
    """Concurrency 32 (the connection-count test's worker)."""

    concurrency = 32


class OrmStreamJobs(StreamJobs):
    """Concurrency 32, and each ``handle`` uses the ORM first, so its thread holds a
    database connection for the whole call (the connection-bound test's worker)."""

    concurrency = 32

    def handle(self, event: RecordedEvent) -> list[StreamAppend] | None:
        Event.objects.filter(stream_id=event.stream_id).count()
        return super().handle(event)
