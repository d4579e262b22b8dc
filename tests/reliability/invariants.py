"""What the reliability tests check: reads of their tables, and the invariants over them
(read models equal to their recomputation, no backward bookmark move, each event once);
the marks of a test that checks them."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from django.db import connection

from eventstore.postgres import PostgresEventStore
from eventstore.types import Cursor
from tests.reliability.subscribers import (
    ACTUAL_BATCH_TOTALS,
    ACTUAL_TOTALS,
    EXPECTED_BATCH_TOTALS,
    EXPECTED_TOTALS,
    MIXED_FEED_NAMES,
)

#: The marks of a test whose worker processes write the reliability tables: transactions
#: that really commit (the workers are other processes) and fresh tables (``rel_tables``).
ON_REL_TABLES = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("rel_tables")]


def fetch(query: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Every row of ``query``, as tuples."""
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return [tuple(row) for row in cursor.fetchall()]


def scalar(query: str, params: Any = None) -> Any:
    """The first column of the first row of ``query``."""
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


def mixed_feed_receipted() -> bool:
    """The mixed feed's subscribers are at the head and every Order has its Receipt."""
    return at_head(*MIXED_FEED_NAMES) and len(receipts_by_order()) == len(order_ids())


def mixed_feed_matches() -> bool:
    """The mixed feed's subscribers are at the head and the read models equal their
    recomputation from the events."""
    return at_head(*MIXED_FEED_NAMES) and read_models_match()


def applied_counts(subscriber: str) -> Counter[Any]:
    """How many times ``subscriber`` applied each event."""
    return Counter(
        row[0]
        for row in fetch("SELECT event_id FROM rel_applied WHERE subscriber = %s", [subscriber])
    )


def overlaps() -> list[tuple[Any, ...]]:
    return fetch("SELECT subscriber, pid FROM rel_overlaps")
