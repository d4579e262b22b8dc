"""Bookmark rows and the reads a batch starts from (shared by both kinds of subscriber)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.backends.utils import CursorWrapper

from config.options import options
from eventstore.postgres import PostgresEventStore, fetch_events, row_to_event
from eventstore.types import START, Cursor, RecordedEvent
from subscribers import sql
from subscribers.registry import Registered


@dataclass(frozen=True)
class BookmarkState:
    """What a lock or a claim found on the bookmark row."""

    cursor: Cursor
    attempts: int
    failing_event_id: uuid.UUID | None

    @classmethod
    def from_row(cls, row: Any) -> BookmarkState:
        return cls(Cursor(int(row[0]), int(row[1])), int(row[2]), row[3])


@dataclass(frozen=True)
class Batch:
    """Wanted events after a bookmark, and the head visible in the same snapshot."""

    events: list[RecordedEvent]
    head: Cursor

    def end(self, after: Cursor, batch_size: int) -> Cursor:
        """Where the bookmark may go once every event of the batch is done.

        A full batch ends at its last event (more may follow). A short one saw every
        wanted event up to the head, so it moves on to the head: the events in
        between are unwanted and are not scanned again.
        """
        last = self.events[-1].cursor if self.events else after
        if len(self.events) >= batch_size:
            return last
        return max(last, self.head, after)


def ensure_bookmarks(entries: Iterable[Registered]) -> None:
    """Create the bookmark of every subscriber seen for the first time."""
    entries = list(entries)
    if not entries:
        return
    head = PostgresEventStore().head() if any(e.start_at_head for e in entries) else START
    with connection.cursor() as cursor:
        for entry in entries:
            start = head if entry.start_at_head else START
            cursor.execute(
                sql.ENSURE_BOOKMARK,
                {"name": entry.name, "kind": entry.kind, "tx": start[0], "pos": start[1]},
            )


def read_batch(cursor: CursorWrapper, entry: Registered, after: Cursor) -> Batch:
    """Up to ``batch_size`` wanted events after ``after``, under the horizon."""
    params: dict[str, Any] = {
        "tx": after.transaction_id,
        "pos": after.position,
        "limit": entry.batch_size,
    }
    query = sql.READ_BATCH
    if entry.event_types is not None:
        query, params["types"] = sql.READ_BATCH_OF_TYPES, list(entry.event_types)
    return _batch_of(fetch_events(cursor, query, params))


def lock_and_read_batch(
    cursor: CursorWrapper, entry: Registered, timeout_ms: str, *, waits: bool = False
) -> tuple[BookmarkState, int, Batch] | None:
    """Lock projection ``entry``'s bookmark (``SKIP LOCKED``), set the batch's timeouts and
    read its next batch, in one round trip; return the bookmark, the session's backend
    pid and the batch, or None when the bookmark is not to be worked now.

    The batch commits without waiting for the disk (docs/projections.md) unless it
    ``waits`` (a failure's record) or the option projection_commit_waits_for_flush says so."""
    params: dict[str, Any] = {"name": entry.name, "ms": timeout_ms, "limit": entry.batch_size}
    typed = entry.event_types is not None
    if entry.event_types is not None:
        params["types"] = list(entry.event_types)
    waits = waits or options().projection_commit_waits_for_flush
    rows = fetch_events(cursor, sql.LOCK_AND_READ_BATCH[typed, waits], params)
    if not rows:
        return None
    skip = sql.LOCKED_BOOKMARK_COLUMNS
    state, backend_pid = BookmarkState.from_row(rows[0]), int(rows[0][4])
    return state, backend_pid, _batch_of([row[skip:] for row in rows])


def _batch_of(rows: list[Any]) -> Batch:
    """Rows of (head_tx, head_pos, event columns...) as a ``Batch``."""
    head = START
    events: list[RecordedEvent] = []
    for row in rows:
        if row[0] is not None:
            head = Cursor(int(row[0]), int(row[1]))
        if row[2] is not None:
            events.append(row_to_event(row[2:]))
    return Batch(events, head)


def advance(cursor: CursorWrapper, name: str, to: Cursor, *, keep_failure: bool = False) -> None:
    """Move a bookmark whose row this transaction has locked.

    Moving clears the failure state, unless ``keep_failure``: the bookmark then comes
    to stand before the event it failed on, whose attempts go on counting.
    """
    query = sql.ADVANCE_LOCKED_KEEPING_FAILURE if keep_failure else sql.ADVANCE_LOCKED
    cursor.execute(query, {"name": name, "tx": to[0], "pos": to[1]})
