"""Helpers for the reliability tests: their tables, event mixes, invariant checks, processes."""

from __future__ import annotations

import random
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from eventstore import NewEvent, RecordedEvent, StreamAppend
from eventstore.postgres import PostgresEventStore
from eventstore.types import Cursor
from tests.reliability_subscribers import (
    ACTUAL_BATCH_TOTALS,
    ACTUAL_TOTALS,
    DROP_TABLES,
    EXPECTED_BATCH_TOTALS,
    EXPECTED_TOTALS,
    TABLES,
)

R = "tests.reliability_subscribers."
KEYS = 40


@pytest.fixture
def rel_tables(transactional_db: None) -> Iterator[None]:
    """Fresh read-model and log tables, and the bookmark-move trigger (dropped after)."""
    with connection.cursor() as cursor:
        cursor.execute(TABLES)
    yield
    with connection.cursor() as cursor:
        cursor.execute(DROP_TABLES)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Worker processes a test starts; any still running at the end are killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(30)


def mixed_events(rng: random.Random, count: int, order_every: int = 5) -> list[NewEvent]:
    """Ticks with a key and an amount, and every ``order_every``-th one an Order."""
    return [
        NewEvent(
            "Order" if rng.randrange(order_every) == 0 else "Tick",
            {"key": f"k{rng.randrange(KEYS)}", "amount": rng.randrange(1, 1000)},
        )
        for _ in range(count)
    ]


def append_mixed(rng: random.Random, count: int, stream: str) -> list[RecordedEvent]:
    return PostgresEventStore().append_streams([StreamAppend(stream, mixed_events(rng, count))])


def fetch(query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return [tuple(row) for row in cursor.fetchall()]


def scalar(query: str, params: Any = None) -> Any:
    return fetch(query, params)[0][0]


def totals_match() -> bool:
    """``rel.totals`` equals its read model recomputed from the events."""
    return fetch(ACTUAL_TOTALS) == fetch(EXPECTED_TOTALS)


def read_models_match() -> bool:
    """Both projections' read models equal the ones recomputed from the events."""
    return totals_match() and fetch(ACTUAL_BATCH_TOTALS) == fetch(EXPECTED_BATCH_TOTALS)


def bookmark_cursor(name: str) -> Cursor | None:
    rows = fetch(
        "SELECT last_transaction_id, last_position FROM projection_bookmarks"
        " WHERE subscriber_name = %s",
        [name],
    )
    return Cursor(*rows[0]) if rows else None


def at_head(*names: str) -> bool:
    head = PostgresEventStore().head()
    return all(bookmark_cursor(name) == head for name in names)


def backward_moves() -> list[tuple[Any, ...]]:
    """Every recorded bookmark move that went backward (there must be none)."""
    return [
        row
        for row in fetch(
            "SELECT subscriber, old_tx, old_pos, new_tx, new_pos FROM rel_bookmark_moves"
        )
        if Cursor(row[3], row[4]) < Cursor(row[1], row[2])
    ]


def bookmark_moves() -> int:
    return int(scalar("SELECT count(*) FROM rel_bookmark_moves"))


def receipts_by_order() -> Counter[str]:
    """How many Receipt events were appended for each order."""
    return Counter(
        row[0] for row in fetch("SELECT data->>'order' FROM events WHERE event_type = 'Receipt'")
    )


def order_ids() -> set[str]:
    return {row[0] for row in fetch("SELECT event_id::text FROM events WHERE event_type='Order'")}


def applied_counts(subscriber: str) -> Counter[Any]:
    """How many times ``subscriber`` applied each event."""
    return Counter(
        row[0]
        for row in fetch("SELECT event_id FROM rel_applied WHERE subscriber = %s", [subscriber])
    )


def overlaps() -> list[tuple[Any, ...]]:
    return fetch("SELECT subscriber, pid FROM rel_overlaps")
