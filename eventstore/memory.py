"""An in-memory event store: a fake for pure unit tests, honouring the same contract.

Every append is one committed "transaction" with its own id, so the horizon is
always the head. It has no bookmark table (``durable = False``).
"""

from __future__ import annotations

import functools
import json
import threading
import uuid
from collections.abc import Collection, Sequence
from datetime import UTC, datetime

from eventstore.store import EventStore
from eventstore.types import (
    START,
    ConcurrencyError,
    Cursor,
    InvalidAppend,
    RecordedEvent,
    StreamAppend,
    validate_appends,
)


class InMemoryEventStore(EventStore):
    """Events in a list, in global order. Thread-safe."""

    durable = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[RecordedEvent] = []
        self._by_id: dict[uuid.UUID, RecordedEvent] = {}
        self._streams: dict[str, list[RecordedEvent]] = {}
        self._next_transaction_id = 1_000
        self._next_position = 1

    def append_streams(self, appends: Sequence[StreamAppend]) -> list[RecordedEvent]:
        checked = validate_appends(appends)
        with self._lock:
            for append, _ in checked:
                actual = len(self._streams.get(append.stream_id, []))
                if append.expected_version is not None and append.expected_version != actual:
                    raise ConcurrencyError(append.stream_id, append.expected_version, actual)
                for event in append.events:
                    if event.event_id in self._by_id:
                        raise InvalidAppend("an event with this event_id is already recorded")
            transaction_id = self._next_transaction_id
            self._next_transaction_id += 1
            now = datetime.now(UTC)
            recorded: list[RecordedEvent] = []
            for append, texts in checked:
                version = len(self._streams.get(append.stream_id, []))
                for offset, event in enumerate(append.events):
                    recorded.append(
                        RecordedEvent(
                            position=self._next_position,
                            transaction_id=transaction_id,
                            event_id=event.event_id,
                            stream_id=append.stream_id,
                            stream_version=version + offset + 1,
                            event_type=event.event_type,
                            data=json.loads(texts[2 * offset]),
                            metadata=json.loads(texts[2 * offset + 1]),
                            recorded_at=now,
                        )
                    )
                    self._next_position += 1
            for stored in recorded:
                self._events.append(stored)
                self._by_id[stored.event_id] = stored
                self._streams.setdefault(stored.stream_id, []).append(stored)
            return list(recorded)

    def read_after(
        self, after: Cursor, limit: int, event_types: Collection[str] | None
    ) -> list[RecordedEvent]:
        wanted = None if event_types is None else set(event_types)
        with self._lock:
            found: list[RecordedEvent] = []
            for event in self._events:
                if event.cursor <= after or (wanted is not None and event.event_type not in wanted):
                    continue
                found.append(event)
                if len(found) == limit:
                    break
            return found

    def read_stream(
        self, stream_id: str, from_version: int = 1, limit: int | None = None
    ) -> list[RecordedEvent]:
        with self._lock:
            events = [
                e for e in self._streams.get(stream_id, []) if e.stream_version >= from_version
            ]
        return events if limit is None else events[:limit]

    def head(self) -> Cursor:
        with self._lock:
            return self._events[-1].cursor if self._events else START

    def get_event(self, event_id: uuid.UUID) -> RecordedEvent | None:
        with self._lock:
            return self._by_id.get(event_id)

    def count_between(
        self, after: Cursor, upto: Cursor, event_types: Collection[str] | None = None
    ) -> int:
        wanted = None if event_types is None else set(event_types)
        with self._lock:
            return sum(
                1
                for event in self._events
                if after < event.cursor <= upto and (wanted is None or event.event_type in wanted)
            )

    def is_visible(self, cursor: Cursor) -> bool:
        # Every append commits at once, in transaction-id order: nothing is ever in flight.
        return True


@functools.cache
def shared_memory_store() -> InMemoryEventStore:
    """The process-wide in-memory store used when ``EVENTDESK_EVENT_STORE=memory``."""
    return InMemoryEventStore()
