"""One contract, two stores: the in-memory fake behaves like PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest

from eventstore import (
    NO_STREAM,
    ConcurrencyError,
    Cursor,
    InvalidAppend,
    NewEvent,
    StreamAppend,
)
from eventstore.store import EventStore
from eventstore.types import START, RecordedEvent
from tests.support import wait_for


def _append(store: EventStore, stream: str, *types: str, expected: int | None = None):
    events = [NewEvent(t, {"n": i}) for i, t in enumerate(types)]
    return _visible(store, store.append_streams([StreamAppend(stream, events, expected)]))


def _visible(store: EventStore, recorded: list[RecordedEvent]) -> list[RecordedEvent]:
    """Wait until readers see ``recorded``: PostgreSQL's horizon is cluster-wide, so a
    transaction open in another database of the server (a second suite) holds it back."""
    wait_for(lambda: store.head() >= recorded[-1].cursor, what="the appended events visible")
    return recorded


def test_append_returns_events_with_ids_positions_and_versions(store: EventStore) -> None:
    recorded = _append(store, "run-1", "RunStarted", "StepRecorded")
    assert [e.event_type for e in recorded] == ["RunStarted", "StepRecorded"]
    assert [e.stream_version for e in recorded] == [1, 2]
    assert recorded[0].position < recorded[1].position
    assert recorded[0].transaction_id == recorded[1].transaction_id > 0
    assert recorded[0].data == {"n": 0}
    assert isinstance(recorded[0].recorded_at, datetime)
    assert recorded[0].cursor == Cursor(recorded[0].transaction_id, recorded[0].position)


def test_append_several_streams_in_one_transaction(store: EventStore) -> None:
    recorded = store.append_streams(
        [
            StreamAppend("a", [NewEvent("A1")], NO_STREAM),
            StreamAppend("b", [NewEvent("B1"), NewEvent("B2")], NO_STREAM),
        ]
    )
    _visible(store, recorded)
    assert {e.transaction_id for e in recorded} == {recorded[0].transaction_id}
    assert [e.stream_id for e in store.read_all(START, 10)] == ["a", "b", "b"]


def test_read_all_in_global_order_after_a_cursor_with_a_limit(store: EventStore) -> None:
    first = _append(store, "s1", "E1", "E2")
    second = _append(store, "s2", "E3")
    everything = store.read_all(START, 10)
    assert [e.event_id for e in everything] == [e.event_id for e in first + second]
    assert [e.cursor for e in everything] == sorted(e.cursor for e in everything)
    assert [e.event_type for e in store.read_all(first[0].cursor, 1)] == ["E2"]
    assert store.read_all(second[0].cursor, 10) == []


def test_read_all_filters_event_types(store: EventStore) -> None:
    _append(store, "s", "Wanted", "Other", "Wanted")
    assert [e.stream_version for e in store.read_all(START, 10, event_types=["Wanted"])] == [1, 3]


def test_read_stream_in_version_order(store: EventStore) -> None:
    _append(store, "s", "E1", "E2")
    _append(store, "other", "X")
    _append(store, "s", "E3")
    assert [e.event_type for e in store.read_stream("s")] == ["E1", "E2", "E3"]
    assert [e.event_type for e in store.read_stream("s", from_version=2)] == ["E2", "E3"]
    assert store.read_stream("missing") == []


def test_head_and_count_between(store: EventStore) -> None:
    assert store.head() == START
    recorded = _append(store, "s", "E1", "E2", "E3")
    assert store.head() == recorded[-1].cursor
    assert store.count_between(START, store.head()) == 3
    assert store.count_between(recorded[0].cursor, recorded[2].cursor) == 2
    assert store.count_between(recorded[2].cursor, recorded[0].cursor) == 0


def test_get_event_by_id(store: EventStore) -> None:
    recorded = _append(store, "s", "E1")[0]
    assert store.get_event(recorded.event_id) == recorded
    assert store.get_event(uuid.uuid4()) is None


def test_expected_version_is_checked(store: EventStore) -> None:
    _append(store, "s", "E1", expected=NO_STREAM)
    _append(store, "s", "E2", expected=1)
    with pytest.raises(ConcurrencyError) as raised:
        _append(store, "s", "E3", expected=1)
    assert (raised.value.expected, raised.value.actual) == (1, 2)
    with pytest.raises(ConcurrencyError):
        _append(store, "s", "E3", expected=NO_STREAM)
    assert [e.event_type for e in store.read_stream("s")] == ["E1", "E2"]


def test_a_conflict_in_one_stream_writes_nothing_in_any(store: EventStore) -> None:
    _append(store, "taken", "E1")
    with pytest.raises(ConcurrencyError):
        store.append_streams(
            [
                StreamAppend("fresh", [NewEvent("F1")], NO_STREAM),
                StreamAppend("taken", [NewEvent("T2")], NO_STREAM),
            ]
        )
    assert store.read_stream("fresh") == []
    assert store.count_between(START, store.head()) == 1


@pytest.mark.parametrize(
    ("appends", "message"),
    [
        ([StreamAppend("", [NewEvent("E")])], "stream_id"),
        ([StreamAppend("   ", [NewEvent("E")])], "stream_id"),
        ([StreamAppend("s", [NewEvent("")])], "event_type"),
        ([StreamAppend("s", [NewEvent("  ")])], "event_type"),
        ([StreamAppend("s", [NewEvent("E", {"when": datetime(2026, 1, 1)})])], "JSON"),
        ([StreamAppend("s", [NewEvent("E", {"x": float("nan")})])], "JSON"),
        ([StreamAppend("s", [NewEvent("E", ["not", "an", "object"])])], "JSON object"),  # type: ignore[arg-type]
        ([StreamAppend("s", [])], "no events"),
        ([StreamAppend("s", [NewEvent("E")], -1)], "expected_version"),
        ([StreamAppend("s", [NewEvent("E")]), StreamAppend("s", [NewEvent("E")])], "twice"),
        ([], "nothing to append"),
        ([StreamAppend("s\x00", [NewEvent("E")])], "NUL"),
        ([StreamAppend("s", [NewEvent("E\x00")])], "NUL"),
        ([StreamAppend("s", [NewEvent("E", {"text": "a\x00b"})])], "NUL"),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(
    store: EventStore, appends: list[StreamAppend], message: str
) -> None:
    _append(store, "existing", "E0")
    with pytest.raises(InvalidAppend, match=message):
        store.append_streams(appends)
    assert store.count_between(START, store.head()) == 1


def test_a_valid_stream_beside_a_bad_one_is_not_written(store: EventStore) -> None:
    with pytest.raises(InvalidAppend):
        store.append_streams(
            [
                StreamAppend("good", [NewEvent("E")]),
                StreamAppend("bad", [NewEvent("E", {"x": object()})]),
            ]
        )
    assert store.head() == START


def test_a_duplicate_event_id_is_refused(store: EventStore) -> None:
    event = NewEvent("E1")
    store.append_streams([StreamAppend("s", [event])])
    with pytest.raises(InvalidAppend, match="event_id"):
        store.append_streams([StreamAppend("t", [event])])
    assert store.read_stream("t") == []


def test_a_large_append_keeps_versions_and_global_order(store: EventStore) -> None:
    appends = [
        StreamAppend(f"bulk-{s}", [NewEvent("Bulk", {"s": s, "i": i}) for i in range(1_500)], 0)
        for s in range(4)
    ]
    recorded = _visible(store, store.append_streams(appends))
    assert len(recorded) == 6_000
    assert [e.position for e in recorded] == sorted(e.position for e in recorded)
    assert [e.stream_version for e in recorded[:3]] == [1, 2, 3]
    assert recorded[1_500].stream_id == "bulk-1"
    assert recorded[1_500].stream_version == 1
    assert [e.event_id for e in store.read_all(START, 10_000)] == [e.event_id for e in recorded]


def test_count_between_only_of_some_event_types(store: EventStore) -> None:
    recorded = _append(store, "s", "Wanted", "Other", "Wanted", "Else")
    assert store.count_between(START, store.head(), event_types=["Wanted"]) == 2
    assert store.count_between(START, store.head(), event_types=["Wanted", "Else"]) == 3
    assert store.count_between(recorded[0].cursor, store.head(), event_types=["Wanted"]) == 1
    assert store.count_between(START, store.head(), event_types=[]) == 0
    assert store.count_between(store.head(), START, event_types=["Wanted"]) == 0


def test_a_committed_event_is_visible(store: EventStore) -> None:
    recorded = _append(store, "s", "E1", "E2")
    assert store.is_visible(recorded[0].cursor)
    assert store.is_visible(recorded[-1].cursor)
    assert store.is_visible(START)


def test_recorded_at_and_metadata_read_back_as_written(store: EventStore) -> None:
    """The time an event was recorded is an aware UTC datetime wherever it is read, and
    metadata, empty or not, reads back as the object it was."""
    recorded = _visible(
        store,
        store.append_streams(
            [StreamAppend("meta", [NewEvent("Bare"), NewEvent("Tagged", {}, {"by": "ops"})])]
        ),
    )
    read = store.read_all(START, 10)
    assert [e.metadata for e in read] == [{}, {"by": "ops"}]
    assert [e.recorded_at for e in read] == [e.recorded_at for e in recorded]
    assert all(e.recorded_at.utcoffset() == timedelta(0) for e in read)
