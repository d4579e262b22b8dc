"""One projection batch: lock, read, apply, advance, commit — all in one transaction."""

from __future__ import annotations

import logging

from django.db import connection, transaction

from config.options import options
from eventstore.types import RecordedEvent
from subscribers import sql
from subscribers.bookmarks import (
    BookmarkState,
    Failure,
    advance,
    read_batch,
    record_failure,
)
from subscribers.outcome import Outcome, is_connection_error, log_failure
from subscribers.registry import Registered

logger = logging.getLogger("eventdesk.projections")


def run_projection_batch(entry: Registered) -> Outcome:
    """Apply the next batch of ``entry``; skip it if another worker holds its bookmark.

    The writes of the applied events and the bookmark commit together, so each
    event is applied exactly once. When an event fails, the events before it in
    the batch still commit and the bookmark stops just before the failing one.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        ms = str(int(options().batch_timeout_seconds * 1000))
        cursor.execute(sql.BATCH_TIMEOUTS, {"ms": ms})
        cursor.execute(sql.LOCK_PROJECTION_BOOKMARK, {"name": entry.name})
        row = cursor.fetchone()
        if row is None:
            return Outcome(entry.name)  # worked elsewhere, wedged, paused or waiting to retry
        state = BookmarkState.from_row(row)
        batch = read_batch(cursor, entry, state.cursor)
        applied, failure = _apply(entry, batch.events)
        if failure is None:
            to = batch.end(state.cursor, entry.batch_size)
        else:
            to = batch.events[applied - 1].cursor if applied else state.cursor
        moved = to if to > state.cursor else None
        if moved is not None:
            advance(cursor, entry.name, moved)
        decision = None
        if failure is not None:
            decision = record_failure(cursor, entry.name, to, state, failure)
            log_failure(logger, entry.name, failure, decision)
        return Outcome(
            entry.name,
            claimed=True,
            processed=applied,
            advanced_to=moved,
            failure=failure,
            decision=decision,
            full=failure is None and len(batch.events) >= entry.batch_size,
        )


def _apply(entry: Registered, events: list[RecordedEvent]) -> tuple[int, Failure | None]:
    """Apply as many events as succeed in order; return how many, and the failure after them.

    The happy path costs one savepoint per batch. When event k fails, the savepoint
    is rolled back and events before k are applied again in a fresh one (a
    projection is deterministic), so their writes commit with the bookmark.
    """
    count, failure = len(events), None
    apply_batch = entry.apply_batch
    while count > 0:
        done = 0
        try:
            with transaction.atomic():
                if apply_batch is not None:
                    apply_batch(events[:count])
                    done = count
                else:
                    for event in events[:count]:
                        entry.subscriber.apply(event)
                        done += 1
            return count, failure
        except Exception as exc:
            if is_connection_error(exc):
                raise
            if apply_batch is not None:
                return _apply_singly(apply_batch, events[:count], exc)
            failure = Failure.of(events[done], exc)
            count = done
    return 0, failure


def _apply_singly(
    apply_batch: object, events: list[RecordedEvent], batch_error: Exception
) -> tuple[int, Failure | None]:
    """``apply_batch`` failed somewhere: find the failing event by applying one at a time."""
    assert callable(apply_batch)
    for index, event in enumerate(events):
        try:
            with transaction.atomic():
                apply_batch([event])
        except Exception as exc:
            if is_connection_error(exc):
                raise
            return index, Failure.of(event, exc)
    # Each succeeded alone, which is the same effect as the batch (the apply_batch
    # contract): the batch failure was transient, and the events are applied.
    logger.info("apply_batch failed (%s) but every event applied alone", batch_error)
    return len(events), None
