"""Subscribers used by the worker tests (selected by dotted path or built directly).

``RecordingProjection`` and friends write one row per applied event to
``test_applied_events`` (no unique constraint: an event applied twice shows up as
two rows); ``applied`` reads them back. The table is made by the ``applied_table``
fixture (tests/conftest.py).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.db import connection

from eventstore import NO_STREAM, NewEvent, RecordedEvent, StreamAppend
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
    name = "test.recorder"
    batch_size = 10

    def apply(self, event: RecordedEvent) -> None:
        record(self.name, event)


class SlowRecordingProjection:
    """Slow enough per event that a kill lands in the middle of a batch."""

    name = "test.slow_recorder"
    batch_size = 25

    def apply(self, event: RecordedEvent) -> None:
        record(self.name, event)
        time.sleep(0.02)


class TypedProjection:
    name = "test.typed"
    event_types = ("Wanted",)
    batch_size = 5

    def apply(self, event: RecordedEvent) -> None:
        record(self.name, event)


class BatchProjection:
    """Uses apply_batch; refuses events marked poison (as a whole batch, like a bulk upsert)."""

    name = "test.batch"
    batch_size = 10

    def apply_batch(self, events: list[RecordedEvent]) -> None:
        if any(event.data.get("poison") for event in events):
            raise ValueError("batch contains a poison event")
        for event in events:
            record(self.name, event)


class FragileProjection:
    name = "test.fragile"
    batch_size = 10

    def apply(self, event: RecordedEvent) -> None:
        record(self.name, event)
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


class GatedReaction:
    """Blocks in ``handle`` until the test opens the gate; notes what it saw from inside."""

    name = "test.gated"
    event_types = ("Ping",)
    batch_size = 1

    entered = threading.Event()
    gate = threading.Event()
    observations: list[dict[str, Any]] = []

    @classmethod
    def reset(cls) -> None:
        cls.entered.clear()
        cls.gate.clear()
        cls.observations.clear()

    def handle(self, event: RecordedEvent) -> list[StreamAppend]:
        with raw_connection() as probe:
            busy = probe.execute(
                "SELECT pid, state, backend_xid::text, backend_xmin::text FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND (state LIKE 'idle in transaction%%' OR backend_xid IS NOT NULL"
                "      OR backend_xmin IS NOT NULL)"
            ).fetchall()
        self.observations.append(
            {
                "in_atomic_block": connection.in_atomic_block,
                "django_connection_open": connection.connection is not None,
                "transactions_open": busy,
            }
        )
        self.entered.set()
        if not self.gate.wait(60):
            raise TimeoutError("the test never opened the gate")
        pong = NewEvent("Pong", {"ping": str(event.event_id)})
        return [StreamAppend(f"pong-{event.event_id}", [pong], NO_STREAM)]
