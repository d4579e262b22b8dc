"""Append: ``append_streams`` against a raw psycopg INSERT of the same rows."""

from __future__ import annotations

import json
import time
import uuid

from benchmarks.db import BenchDatabase
from benchmarks.fixtures import batch_appends
from benchmarks.results import Results
from benchmarks.stable import Work, interleaved_work

RAW_INSERT_ROW = "(%s, %s, %s, %s, %s::jsonb, %s::jsonb)"


def _eventdesk(transactions: int, per_transaction: int) -> Work:
    from eventstore.store import get_event_store

    store = get_event_store()
    work = [
        batch_appends(i * per_transaction, per_transaction, "append-ed")
        for i in range(transactions)
    ]
    started = time.perf_counter()
    for appends in work:
        store.append_streams(appends)
    return Work(transactions * per_transaction, time.perf_counter() - started)


def _raw(db: BenchDatabase, transactions: int, per_transaction: int) -> Work:
    work = []
    for i in range(transactions):
        rows = []
        for append in batch_appends(i * per_transaction, per_transaction, "append-raw"):
            for version, event in enumerate(append.events, start=1):
                rows.append(
                    (uuid.uuid4(), append.stream_id, version, event.event_type,
                     json.dumps(dict(event.data)), json.dumps(dict(event.metadata)))
                )  # fmt: skip
        work.append(rows)
    with db.connect() as conn:
        started = time.perf_counter()
        for rows in work:
            statement = (
                "INSERT INTO events"
                " (event_id, stream_id, stream_version, event_type, data, metadata) VALUES "
                + ", ".join([RAW_INSERT_ROW] * len(rows))
            )
            conn.execute(statement, [value for row in rows for value in row])
            conn.commit()
        elapsed = time.perf_counter() - started
    return Work(transactions * per_transaction, elapsed)


def run(
    db: BenchDatabase, results: Results, *, quick: bool, rounds: int, min_seconds: float
) -> None:
    """Events/s of single-event transactions and of batches of 100 and 1,000: the raw
    INSERT and ``append_streams`` interleaved, ``rounds`` times each, each side sized to
    ``min_seconds`` of work per round."""
    single = 300 if quick else 2_000
    batched = 6_000 if quick else 50_000
    cases = [("single", single, 1, 0.8), ("batch 100", batched // 100, 100, 0.5),
             ("batch 1000", batched // 1_000, 1_000, 0.5)]  # fmt: skip
    for label, transactions, size, target in cases:
        runs = {
            "raw": lambda: _raw(db, transactions, size),  # noqa: B023 (called at once)
            "eventdesk": lambda: _eventdesk(transactions, size),  # noqa: B023
        }
        figures = interleaved_work(db, runs, rounds, min_seconds)
        results.add(f"append {label}: raw psycopg INSERT", figures["raw"], "events/s")
        results.add(f"append {label}: append_streams", figures["eventdesk"], "events/s")
        results.ratio(f"append {label}: append_streams / raw", figures["eventdesk"],
                      figures["raw"], at_least=target)  # fmt: skip
