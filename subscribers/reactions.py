"""One reaction step: claim a lease, handle with no transaction open, compare-and-set."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import connection, transaction

from config.options import options
from eventstore.postgres import PostgresEventStore
from eventstore.types import Cursor, RecordedEvent, StreamAppend
from subscribers import sql
from subscribers.bookmarks import Batch, BookmarkState, Failure, read_batch, record_failure
from subscribers.outcome import Outcome, is_connection_error, log_failure
from subscribers.registry import Registered

logger = logging.getLogger("eventdesk.reactions")


class NotAReactionResult(TypeError):
    """``handle`` returned something other than a sequence of ``StreamAppend`` (or None)."""


def run_reaction_step(
    entry: Registered, owner: str, *, should_stop: Callable[[], bool] = lambda: False
) -> Outcome:
    """Handle the next batch of ``entry`` (usually one event) if its lease can be had.

    External effects of ``handle`` are at-least-once; the appends it returns are
    written exactly once, together with the bookmark move, and only if the
    bookmark is still where the claim found it.
    """
    if connection.in_atomic_block:
        raise RuntimeError("a reaction must not run inside a transaction")
    claimed = _claim(entry, owner)
    if claimed is None:
        return Outcome(entry.name)
    state, batch = claimed
    if not batch.events:
        return _finish(entry, owner, state, batch.end(state.cursor, entry.batch_size), [], None, 0)
    # Release the connection: nothing of ours stays open while the slow work runs,
    # so this reaction holds back neither the horizon nor a pool slot.
    connection.close()
    appends: list[StreamAppend] = []
    done, failure = 0, None
    for event in batch.events:
        if done and should_stop():
            break
        try:
            appends.extend(_handle(entry, event))
        except Exception as exc:
            failure = Failure.of(event, exc)
            break
        done += 1
    if failure is None and done == len(batch.events):
        to = batch.end(state.cursor, entry.batch_size)
    else:
        to = batch.events[done - 1].cursor if done else state.cursor
    outcome = _finish(entry, owner, state, to, appends, failure, done, batch.events[0])
    return Outcome(
        entry.name,
        claimed=True,
        processed=outcome.processed,
        advanced_to=outcome.advanced_to,
        failure=failure,
        decision=outcome.decision,
        full=failure is None and len(batch.events) >= entry.batch_size,
        discarded=outcome.discarded,
    )


def _claim(entry: Registered, owner: str) -> tuple[BookmarkState, Batch] | None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            sql.CLAIM_LEASE,
            {"name": entry.name, "owner": owner, "lease": options().lease_seconds},
        )
        row = cursor.fetchone()
        if row is None:
            return None
        state = BookmarkState.from_row(row)
        return state, read_batch(cursor, entry, state.cursor)


def _handle(entry: Registered, event: RecordedEvent) -> list[StreamAppend]:
    result: Any = entry.subscriber.handle(event)
    if result is None:
        return []
    if isinstance(result, StreamAppend):
        result = [result]
    appends = list(result)
    wrong = [a for a in appends if not isinstance(a, StreamAppend)]
    if wrong:
        raise NotAReactionResult(
            f"{entry.name}.handle returned {type(wrong[0]).__name__}; "
            "expected a list of StreamAppend (or None)"
        )
    return appends


def _finish(
    entry: Registered,
    owner: str,
    state: BookmarkState,
    to: Cursor,
    appends: list[StreamAppend],
    failure: Failure | None,
    done: int,
    first: RecordedEvent | None = None,
) -> Outcome:
    """The short transaction after ``handle``: compare-and-set, append, record a failure."""
    try:
        return _commit(entry, owner, state, to, appends, failure, done)
    except Exception as exc:
        if failure is not None or not appends or first is None or is_connection_error(exc):
            raise
        # The returned appends were refused (a concurrency conflict, a bad event):
        # nothing was written; count it as a failure on the first handled event.
        failed = Failure.of(first, exc)
        with transaction.atomic(), connection.cursor() as cursor:
            decision = record_failure(cursor, entry.name, state.cursor, state, failed, owner=owner)
        log_failure(logger, entry.name, failed, decision)
        return Outcome(entry.name, claimed=True, failure=failed, decision=decision)


def _commit(
    entry: Registered,
    owner: str,
    state: BookmarkState,
    to: Cursor,
    appends: list[StreamAppend],
    failure: Failure | None,
    done: int,
) -> Outcome:
    at, moved, decision = state.cursor, None, None
    with transaction.atomic(), connection.cursor() as cursor:
        if to > state.cursor:
            cursor.execute(
                sql.COMPARE_AND_SET,
                {
                    "name": entry.name,
                    "owner": owner,
                    "tx": state.cursor[0],
                    "pos": state.cursor[1],
                    "to_tx": to[0],
                    "to_pos": to[1],
                },
            )
            if cursor.fetchone() is None:
                logger.warning(
                    "%s: the bookmark moved while %d event(s) were handled (dismissed by an"
                    " operator, or the lease expired and another worker took over):"
                    " the result (%d append(s)) is discarded",
                    entry.name,
                    done,
                    len(appends),
                )
                cursor.execute(sql.RELEASE_LEASE, {"name": entry.name, "owner": owner})
                return Outcome(entry.name, claimed=True, discarded=True)
            if appends:
                PostgresEventStore().append_streams(appends)
            at, moved = to, to
        if failure is not None:
            # After a compare-and-set the lease is released: the failure is recorded
            # against the new cursor, which this transaction holds locked.
            decision = record_failure(
                cursor, entry.name, at, state, failure, owner="" if moved else owner
            )
            log_failure(logger, entry.name, failure, decision)
        elif moved is None:
            cursor.execute(sql.RELEASE_LEASE, {"name": entry.name, "owner": owner})
    return Outcome(entry.name, claimed=True, processed=done, advanced_to=moved, decision=decision)
