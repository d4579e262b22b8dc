"""The event store's values and errors. Pure Python: no Django here."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

#: ``expected_version`` for a stream that must not exist yet.
NO_STREAM = 0


class Cursor(NamedTuple):
    """A place in the global order: ``(transaction_id, position)``, compared lexicographically."""

    transaction_id: int
    position: int

    def __str__(self) -> str:
        return f"{self.transaction_id}/{self.position}"


#: Before the first event.
START = Cursor(0, 0)


class EventStoreError(Exception):
    """Base of every error the event store raises."""


class InvalidAppend(EventStoreError, ValueError):
    """The append request is malformed; nothing was written."""


class ConcurrencyError(EventStoreError):
    """A stream's version is not the one the append expected; nothing was written."""

    def __init__(self, stream_id: str, expected: int, actual: int) -> None:
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"stream {stream_id!r} is at version {actual}, the append expected {expected}"
        )


@dataclass(frozen=True)
class NewEvent:
    """An event to append. ``data`` and ``metadata`` must serialise to JSON objects."""

    event_type: str
    data: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass(frozen=True)
class StreamAppend:
    """Events for one stream. ``expected_version`` None skips the check;
    ``NO_STREAM`` (0) requires a new stream; N requires the stream to be at N."""

    stream_id: str
    events: Sequence[NewEvent]
    expected_version: int | None = None


@dataclass(frozen=True)
class RecordedEvent:
    """An event as stored, with its place in the global order."""

    position: int
    transaction_id: int
    event_id: uuid.UUID
    stream_id: str
    stream_version: int
    event_type: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.transaction_id, self.position)


MAX_STREAM_ID_LENGTH = 200
MAX_EVENT_TYPE_LENGTH = 200


#: The metadata key under which ``append_streams`` keeps the payload's own top-level key
#: order, when it is not the order jsonb gives back (shorter keys first, then bytewise).
KEY_ORDER = "data_key_order"


def _key_order(data: Any) -> list[str] | None:
    """The payload's top-level keys in their own order, or None when jsonb's order is the
    same (most payloads: nothing is stored then) or the payload is not an object of
    string keys. One pass, no sort: this runs for every appended event."""
    if not isinstance(data, Mapping) or len(data) < 2:
        return None
    # jsonb orders keys by length in bytes, then bytewise; UTF-8 keeps code point order,
    # so comparing the str themselves agrees with comparing their bytes.
    last_length, last = -1, ""
    in_jsonb_order = True
    for key in data:
        if type(key) is not str:
            return None
        length = len(key) if key.isascii() else len(key.encode())
        if in_jsonb_order and (length < last_length or (length == last_length and key < last)):
            in_jsonb_order = False
        last_length, last = length, key
    return None if in_jsonb_order else list(data)


def in_key_order(data: Mapping[str, Any], metadata: Any) -> dict[str, Any]:
    """``data`` with its top-level keys back in the order they were appended in (keys the
    recorded order does not name, if any, after the others)."""
    order = metadata.get(KEY_ORDER) if isinstance(metadata, Mapping) else None
    if not isinstance(order, list):
        return dict(data)
    ordered = {key: data[key] for key in order if isinstance(key, str) and key in data}
    ordered.update((key, value) for key, value in data.items() if key not in ordered)
    return ordered


def validate_appends(appends: Sequence[StreamAppend]) -> list[tuple[StreamAppend, list[str]]]:
    """Check an append request before anything is written.

    Returns each append with its events' data and metadata already serialised
    to JSON text, so a store never writes half a request.
    """
    if isinstance(appends, StreamAppend):
        raise InvalidAppend("append_streams takes a sequence of StreamAppend, not one")
    seen: set[str] = set()
    ids: set[uuid.UUID] = set()
    checked: list[tuple[StreamAppend, list[str]]] = []
    for append in appends:
        if not isinstance(append, StreamAppend):
            raise InvalidAppend(f"expected a StreamAppend, got {type(append).__name__}")
        stream = append.stream_id
        if not isinstance(stream, str) or not stream.strip():
            raise InvalidAppend("stream_id must be a non-empty string")
        if len(stream) > MAX_STREAM_ID_LENGTH:
            raise InvalidAppend(f"stream_id is longer than {MAX_STREAM_ID_LENGTH} characters")
        if "\x00" in stream:
            raise InvalidAppend("stream_id must not contain NUL characters")
        if stream in seen:
            raise InvalidAppend(f"stream {stream!r} appears twice in one append")
        seen.add(stream)
        expected = append.expected_version
        if expected is not None and (
            not isinstance(expected, int) or isinstance(expected, bool) or expected < 0
        ):
            raise InvalidAppend(f"expected_version for {stream!r} must be None or an int >= 0")
        if not append.events:
            raise InvalidAppend(f"no events to append to stream {stream!r}")
        texts: list[str] = []
        for event in append.events:
            if not isinstance(event, NewEvent):
                raise InvalidAppend(f"expected a NewEvent, got {type(event).__name__}")
            kind = event.event_type
            if not isinstance(kind, str) or not kind.strip():
                raise InvalidAppend("event_type must be a non-blank string")
            if "\x00" in kind:
                raise InvalidAppend("event_type must not contain NUL characters")
            if len(kind) > MAX_EVENT_TYPE_LENGTH:
                raise InvalidAppend(f"event_type is longer than {MAX_EVENT_TYPE_LENGTH} characters")
            if not isinstance(event.event_id, uuid.UUID):
                raise InvalidAppend("event_id must be a UUID")
            if event.event_id in ids:
                raise InvalidAppend(f"event_id {event.event_id} appears twice in one append")
            ids.add(event.event_id)
            metadata = event.metadata
            order = _key_order(event.data)
            if order is not None and isinstance(metadata, Mapping):
                metadata = {**metadata, KEY_ORDER: order}
            for label, value in (("data", event.data), ("metadata", metadata)):
                if not isinstance(value, Mapping):
                    raise InvalidAppend(f"{label} of a {kind} event must be a JSON object")
                try:
                    text = json.dumps(value, allow_nan=False)
                except (TypeError, ValueError) as exc:
                    raise InvalidAppend(
                        f"{label} of a {kind} event is not JSON-serialisable: {exc}"
                    ) from exc
                if "\\u0000" in text:
                    # PostgreSQL's jsonb cannot hold a NUL character.
                    raise InvalidAppend(f"{label} of a {kind} event contains a NUL character")
                texts.append(text)
        checked.append((append, texts))
    if not checked:
        raise InvalidAppend("nothing to append")
    return checked
