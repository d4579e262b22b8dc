"""One projection batch: lock, read, apply, advance, commit — all in one transaction."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper

from config.options import options
from eventstore.types import Cursor, RecordedEvent
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
    the batch still commit and the bookmark stops just before the failing one: the
    batch runs with no savepoint and, on a failure, is rolled back whole and redone up
    to the failing event in a fresh transaction (``_after_failure``).
    ``watch`` lets the worker's watchdog see the batch (and give up on it if it hangs).
    """
    watch = watch or BatchWatch()
    try:
        return _run_batch(entry, watch)
    finally:
        watch.end()


class _RolledBack(Exception):
    """The batch's happy path raised: its whole transaction was rolled back. ``at`` is
    where the bookmark stood, ``index`` the failing event's place in the batch when it is
    known (one ``apply`` per event), with its ``failure``."""

    def __init__(self, at: Cursor, index: int | None, failure: Failure | None) -> None:
        super().__init__(at, index, failure)
        self.at, self.index, self.failure = at, index, failure


def _run_batch(entry: Registered, watch: BatchWatch) -> Outcome:
    """The happy path: the batch's writes in the bookmark's own transaction, with no
    savepoint (two round trips fewer, which is most of a batch of one). When an event
    fails, the transaction is rolled back whole and ``_after_failure`` redoes the batch
    up to the failing event in a fresh one."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            locked = lock_and_read_batch(cursor, entry, _timeout_ms())
            if locked is None:
                return Outcome(entry.name)  # worked elsewhere, wedged, paused or waiting to retry
            state, backend_pid, batch = locked
            events = _before_known_failure(batch.events, state)
            if events:
                watch.begin(entry, state, backend_pid, events[0])
                _apply_unguarded(entry, events, watch.applying, state.cursor)
            return _finish(cursor, entry, state, batch.events, batch.end, events, len(events))
    except _RolledBack as rolled:
        return _after_failure(entry, watch, rolled)


def _apply_unguarded(
    entry: Registered,
    events: list[RecordedEvent],
    applying: Callable[[RecordedEvent], None],
    at: Cursor,
) -> None:
    """Apply ``events`` in the caller's transaction, with no savepoint, not even those the
    subscriber's own ``atomic`` blocks would make (``get_or_create`` makes one per row it
    creates): on a subscriber's error raise ``_RolledBack`` (the caller's transaction then
    rolls back whole, and ``_after_failure`` redoes the batch with every savepoint).

    Without its savepoints, an error caught inside an ``atomic`` block (``get_or_create``
    losing a race, a subscriber's own ``try``) cannot be recovered from as it would be:
    the transaction is broken. So the failing event is known only when no such error
    came before it; otherwise the redo finds it afresh, one event at a time, with the
    savepoints, and writes what the per-event ORM code writes."""
    apply_batch = _batch_writer(entry)
    done = 0
    try:
        with _without_savepoints():
            if apply_batch is not None:
                applying(events[0])
                apply_batch(events)
            else:
                for event in events:
                    applying(event)
                    entry.subscriber.apply(event)
                    done += 1
        if _broken():  # an error was caught and the code went on: redo it with savepoints
            raise _RolledBack(at, None, None)
    except _RolledBack:
        raise
    except Exception as exc:
        if is_connection_error(exc):
            raise
        if apply_batch is not None or _broken():
            raise _RolledBack(at, None, None) from exc
        raise _RolledBack(at, done, Failure.of(events[done], exc)) from exc


@contextmanager
def _without_savepoints() -> Iterator[None]:
    """Django's ``atomic`` blocks make no savepoint on this thread's connection meanwhile
    (two round trips each); an error inside one marks the transaction for rollback.

    A savepoint taken by hand (``transaction.savepoint()``) is not made either: a rollback
    to it, which then could not undo anything, marks the transaction for rollback too, so
    that the batch is redone with the savepoint made."""
    features = connection.features
    saved = features.uses_savepoints
    roll_back_to = connection.savepoint_rollback

    def savepoint_rollback(sid: str | None) -> None:
        if sid is None:  # a savepoint not made: what it was to undo is still written
            connection.needs_rollback = True
        else:
            roll_back_to(sid)

    features.uses_savepoints = False
    connection.savepoint_rollback = savepoint_rollback  # type: ignore[method-assign]
    try:
        yield
    finally:
        features.uses_savepoints = saved
        del connection.savepoint_rollback  # the class's method again


class BrokenTransaction(Exception):
    """A subscriber left its transaction able only to roll back, and raised nothing."""


BROKEN_TRANSACTION = (
    "this event left the transaction able only to roll back, without raising: a database"
    " error was caught and the code went on (or it called transaction.set_rollback(True)),"
    " so none of its writes could commit. Put a statement that may fail in its own"
    " transaction.atomic() block: its error then rolls back to that block's savepoint"
)


def _check_not_broken() -> None:
    """Raise ``BrokenTransaction`` if an event's code left the transaction broken."""
    if _broken():
        raise BrokenTransaction(BROKEN_TRANSACTION)


def _broken() -> bool:
    """Whether the transaction can only roll back: Django marked it (an error left an
    ``atomic`` block that had no savepoint) or the server has (an error was caught
    without a rollback to a savepoint, and the code went on)."""
    if connection.needs_rollback:
        return True
    raw = connection.connection
    status = raw.info.transaction_status if raw is not None else None
    return status == psycopg.pq.TransactionStatus.INERROR


def _after_failure(entry: Registered, watch: BatchWatch, rolled: _RolledBack) -> Outcome:
    """The batch failed and was rolled back: in a fresh transaction, lock the bookmark
    again and, if it still stands where it stood, apply the events before the failing one
    (each batch writer's failure is found by ``apply_events``, one event at a time), move
    the bookmark to just before it and record the failure. Events under the horizon never
    change, so the batch read again starts with the same events."""
    with transaction.atomic(), connection.cursor() as cursor:
        # It records the failure (the wedge an operator is paged for): that must outlive a
        # crash of the server, so this transaction waits for the disk.
        locked = lock_and_read_batch(cursor, entry, _timeout_ms(), waits=True)
        if locked is None or locked[0].cursor != rolled.at:
            return Outcome(entry.name)  # taken, moved or paused meanwhile: not ours to say
        state, backend_pid, batch = locked
        events = _before_known_failure(batch.events, state)
        known, index = rolled.failure, rolled.index
        if known is not None and index is not None and index < len(events):
            if events[index].event_id == known.event.event_id:
                events = events[: index + 1]
            else:
                known = None  # cannot be (the same events are read again): find it afresh
        else:
            known = None
        if events:
            watch.begin(entry, state, backend_pid, events[0])
        if known is not None:
            applied, failure = apply_events(entry, events[:-1], watch.applying)
            failure = failure or known
        else:
            applied, failure = apply_events(entry, events, watch.applying)
        return _finish(cursor, entry, state, batch.events, batch.end, events, applied, failure)


def _finish(
    cursor: CursorWrapper,
    entry: Registered,
    state: BookmarkState,
    read: list[RecordedEvent],
    end: Callable[[Cursor, int], Cursor],
    events: list[RecordedEvent],
    applied: int,
    failure: Failure | None = None,
) -> Outcome:
    """Move the bookmark past the ``applied`` first of ``events`` (of the ``read`` batch,
    which ``end`` ends) and record ``failure``, in the batch's transaction."""
    if failure is None and len(events) == len(read):
        to = end(state.cursor, entry.batch_size)
    else:
        to = events[applied - 1].cursor if applied else state.cursor
    moved = to if to > state.cursor else None
    if moved is not None:
        # Only the events before a hung one were applied: its failure and attempts
        # stay, or a projection that hangs again would wedge an attempt late.
        held_back = failure is None and len(events) < len(read)
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
        full=failure is None and len(read) >= entry.batch_size,
    )


def _timeout_ms() -> str:
    return str(int(options().batch_timeout_seconds * 1000))


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


class _Redo(Exception):
    """A batch run without its subscriber's savepoints went wrong: redo it with them."""


def replay_events(entry: Registered, events: list[RecordedEvent]) -> tuple[int, Failure | None]:
    """``apply_events`` for a rebuild's replay, in the caller's open transaction, without
    the savepoints of the subscriber's own ``atomic`` blocks on its happy path
    (``update_or_create`` makes two per row it creates, four round trips of its six).

    The batch runs under one savepoint, its subscriber's blocks making none. If an event
    raises, or an error was caught and the code went on (the transaction is then broken,
    ``_broken``), the batch is rolled back to that savepoint and ``apply_events`` applies
    it again with every savepoint, finding the failing event afresh: the tables are what
    the per-event code writes with its savepoints, as on the worker's own batches."""
    if not events:
        return 0, None
    apply_batch = _batch_writer(entry)
    try:
        with transaction.atomic():
            with _without_savepoints():
                if apply_batch is not None:
                    apply_batch(events)
                else:
                    for event in events:
                        entry.subscriber.apply(event)
            if _broken():
                raise _Redo
        return len(events), None
    except Exception as exc:
        # A lost connection, or a rollback to the batch's savepoint that failed (the
        # transaction is then the caller's to roll back): nothing to redo here.
        if is_connection_error(exc) or connection.needs_rollback:
            raise
    return apply_events(entry, events)


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

    It costs one savepoint per batch (the worker's own batches skip it on their happy
    path, and come here only after a failure). When event k fails, the savepoint
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
                    _check_not_broken()
                    done = count
                else:
                    for event in events[:count]:
                        applying(event)
                        entry.subscriber.apply(event)
                        _check_not_broken()
                        done += 1
            return count, failure
        except Exception as exc:
            if is_connection_error(exc):
                raise
            if apply_batch is not None:
                return _apply_singly(apply_batch, events[:count], exc, applying)
            # An error at the block's end (its savepoint's release) is the last event's.
            done = min(done, count - 1)
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
                _check_not_broken()
        except Exception as exc:
            if is_connection_error(exc):
                raise
            return index, Failure.of(event, exc)
    # Each succeeded alone, which is the same effect as the batch (the apply_batch
    # contract): the batch failure was transient, and the events are applied.
    logger.info("apply_batch failed (%s) but every event applied alone", batch_error)
    return len(events), None
