"""The event store interface and the store in force."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Protocol

from config.options import options
from eventstore.types import START, Cursor, RecordedEvent, StreamAppend


class EventStore(Protocol):
    """What every event store offers. ``PostgresEventStore`` is the real one;
    ``InMemoryEventStore`` is a fake for pure unit tests. Both subclass this protocol (for
    ``read_all``) and pass the same contract tests
    (``tests/contract/test_event_store_contract.py``)."""

    #: False for the in-memory store: it has no bookmark table, so nothing that
    #: moves bookmarks (the worker, a dismissal) can run against it.
    durable: bool

    def append_streams(self, appends: Sequence[StreamAppend]) -> list[RecordedEvent]:
        """Append to several streams atomically, each checked against its expected version."""
        ...

    def read_all(
        self,
        after: Cursor = START,
        limit: int = 100,
        event_types: Collection[str] | None = None,
    ) -> list[RecordedEvent]:
        """Up to ``limit`` events after ``after``, in global order, under the horizon. Both
        stores inherit this check of the limit and read in ``read_after``."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        return self.read_after(after, limit, event_types)

    def read_after(
        self, after: Cursor, limit: int, event_types: Collection[str] | None
    ) -> list[RecordedEvent]:
        """``read_all`` once its limit is checked."""
        ...

    def read_stream(
        self, stream_id: str, from_version: int = 1, limit: int | None = None
    ) -> list[RecordedEvent]:
        """A stream's events in version order."""
        ...

    def head(self) -> Cursor:
        """The cursor of the last event every reader can see (``START`` when none)."""
        ...

    def get_event(self, event_id: uuid.UUID) -> RecordedEvent | None:
        """One event by id, or None."""
        ...

    def count_between(
        self, after: Cursor, upto: Cursor, event_types: Collection[str] | None = None
    ) -> int:
        """How many visible events lie in ``(after, upto]`` (only of ``event_types``, if given)."""
        ...

    def is_visible(self, cursor: Cursor) -> bool:
        """Whether ``cursor`` is under the horizon: its transaction and every one that began
        before it have ended, so every reader sees all there will ever be up to it."""
        ...


def get_event_store() -> EventStore:
    """The store configured by ``EVENTDESK_EVENT_STORE`` ("postgres" or "memory")."""
    if options().event_store == "memory":
        from eventstore.memory import shared_memory_store

        return shared_memory_store()
    from eventstore.postgres import PostgresEventStore

    return PostgresEventStore()


def append_streams(appends: Sequence[StreamAppend]) -> list[RecordedEvent]:
    """Append through the configured store (see ``EventStore.append_streams``)."""
    return get_event_store().append_streams(appends)
