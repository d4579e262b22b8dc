"""The append-only event store: one global order that never skips an event.

Public API::

    from eventstore import NewEvent, StreamAppend, append_streams, get_event_store
"""

from eventstore.types import (
    NO_STREAM,
    ConcurrencyError,
    Cursor,
    EventStoreError,
    InvalidAppend,
    NewEvent,
    RecordedEvent,
    StreamAppend,
)

__all__ = [
    "NO_STREAM",
    "ConcurrencyError",
    "Cursor",
    "EventStoreError",
    "InvalidAppend",
    "NewEvent",
    "RecordedEvent",
    "StreamAppend",
    "append_streams",
    "get_event_store",
]


def __getattr__(name: str) -> object:
    # Lazy: the store modules import Django models, which need the app registry.
    if name in {"append_streams", "get_event_store"}:
        from eventstore import store

        return getattr(store, name)
    raise AttributeError(name)
