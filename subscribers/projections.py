"""One projection batch: lock, read, apply, advance, commit — all in one transaction."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from django.db import connection, transaction

from config.options import options
from eventstore.types import RecordedEvent
from subscribers import sql
from subscribers.bookmarks import BookmarkState, advance, lock_and_read_batch
from subscribers.failures import Failure, FailureSite, record_failure
from subscribers.outcome import Outcome, is_connection_error, log_failure
from subscribers.registry import Registered
from subscribers.retry import RetryDecision
from subscribers.rows import Rows
from subscribers.watchdog import BatchWatch, Busy

logger = logging.getLogger("eventdesk.projections")


def run_projection_batch(entry: Registered, watch: BatchWatch | None = None) -> Outcome:
    """Apply the next batch of ``entry``; skip it if another worker holds its bookmark.

    The writes of the applied events and the bookmark commit together, so each
    event is applied exactly once. When an event fails, the events before it in
    the batch still commit and the bookmark stops just before the failing one.
    ``watch`` lets the worker's watchdog see the batch (and give up on it if it hangs).
    """
    watch = watch or BatchWatch()
    try:
        return _run_batch(entry, watch)
    finally:
        watch.end()


def _run_batch(entry: Registered, watch: BatchWatch) -> Outcome:
    with transaction.atomic(), connection.cursor() as cursor:
        ms = str(int(options().batch_timeout_seconds * 1000))
        locked = lock_and_read_batch(cursor, entry, ms)
        if locked is None:
            return Outcome(entry.name)  # worked elsewhere, wedged, paused or waiting to retry
        state, backend_pid, batch = locked
        events = _before_known_failure(batch.events, state)
        if events:
            watch.begin(entry, state, backend_pid, events[0])
        applied, failure = apply_events(entry, events, watch.applying)
        if failure is None and len(events) == len(batch.events):
            to = batch.end(state.cursor, entry.batch_size)
        else:
            to = events[applied - 1].cursor if applied else state.cursor
        moved = to if to > state.cursor else None
        if moved is not None:
            # Only the events before a hung one were applied: its failure and attempts
            # stay, or a projection that hangs again would wedge an attempt late.
            held_back = failure is None and len(events) < len(batch.events)
            advance(cursor, entry.name, moved, keep_failure=held_back)
        decision = None
        if failure is not None:
            decision = record_failure(cursor, FailureSite.bookmark(entry.name, to, state), failure)
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


def _before_known_failure(events: list[RecordedEvent], state: BookmarkState) -> list[RecordedEvent]:
    """The events before the one this bookmark last failed on, when the batch holds it
    further on: a batch given up on (a timeout) committed none of the events before it,
    so they commit now, and the bookmark comes to stand just before the failing event,
    its failure and attempts kept."""
    for index, event in enumerate(events):
        if index and event.event_id == state.failing_event_id:
            return events[:index]
    return events


def give_up_batch(busy: Busy, timeout: float) -> RetryDecision | None:
    """End a batch that ran past ``timeout`` and record it as a failure on its bookmark.

    Terminating the batch's session rolls its transaction back and releases the
    bookmark row; the failure then goes through the usual retry and wedge rules.
    """
    name = busy.entry.name
    failure = Failure(
        busy.event,
        f"BatchTimeout: {name} ran past batch_timeout_seconds ({timeout:g}s) on this event;"
        " the batch was abandoned and rolled back",
        busy.stack(),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql.TERMINATE_BATCH, {"pid": busy.backend_pid})
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql.WAIT_FOR_ROW)
        cursor.execute(sql.LOCK_BOOKMARK_AFTER_TIMEOUT, {"name": name})
        site = FailureSite.bookmark(name, busy.state.cursor, busy.state)
        decision = record_failure(cursor, site, failure)
    log_failure(logger, name, failure, decision)
    return decision


def apply_events(
    entry: Registered,
    events: list[RecordedEvent],
    applying: Callable[[RecordedEvent], None] = lambda event: None,
) -> tuple[int, Failure | None]:
    """Apply ``events`` through projection ``entry``'s own code, inside the caller's
    open transaction; return how many applied, and the failure after them (or None).

    The caller owns the transaction and the bookmark: this only writes the read
    model (a rebuild replays history through it, with larger batches). ``applying``
    is told each event before it is applied (the worker's watchdog).

    The happy path costs one savepoint per batch. When event k fails, the savepoint
    is rolled back and events before k are applied again in a fresh one (a
    projection is deterministic), so their writes commit with the bookmark.
    """
    count, failure = len(events), None
    apply_batch = _batch_writer(entry)
    while count > 0:
        done = 0
        try:
            with transaction.atomic():
                if apply_batch is not None:
                    applying(events[0])
                    apply_batch(events[:count])
                    done = count
                else:
                    for event in events[:count]:
                        applying(event)
                        entry.subscriber.apply(event)
                        done += 1
            return count, failure
        except Exception as exc:
            if is_connection_error(exc):
                raise
            if apply_batch is not None:
                return _apply_singly(apply_batch, events[:count], exc, applying)
            failure = Failure.of(events[done], exc)
            count = done
    return 0, failure


def _batch_writer(entry: Registered) -> Callable[[list[RecordedEvent]], None] | None:
    """How ``entry`` writes a whole batch: its unit of work (``apply_rows``), its own
    ``apply_batch``, or None (one ``apply`` per event)."""
    apply_rows = entry.apply_rows
    if apply_rows is not None:
        return functools.partial(apply_through_rows, apply_rows)
    batch: Callable[[list[RecordedEvent]], None] | None = entry.apply_batch
    return batch


def apply_through_rows(
    apply_rows: Callable[[list[RecordedEvent], Rows], None], events: list[RecordedEvent]
) -> None:
    """Run ``apply_rows(events, rows)`` with a fresh unit of work and flush it once, in the
    caller's transaction (an ORM query on a model it holds is refused meanwhile)."""
    rows = Rows()
    with rows.guard():
        apply_rows(events, rows)
    rows.flush()


def _apply_singly(
    apply_batch: object,
    events: list[RecordedEvent],
    batch_error: Exception,
    applying: Callable[[RecordedEvent], None],
) -> tuple[int, Failure | None]:
    """``apply_batch`` failed somewhere: find the failing event by applying one at a time."""
    assert callable(apply_batch)
    for index, event in enumerate(events):
        applying(event)
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
