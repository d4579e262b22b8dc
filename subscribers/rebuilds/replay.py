"""Replaying events into a rebuild's tables through the projection's own code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connection

import subscribers.rebuilds.sql as sql
from eventstore.postgres import fetch_events, row_to_event
from eventstore.types import Cursor, RecordedEvent
from subscribers.failures import Failure
from subscribers.models import Rebuild
from subscribers.projections import replay_events
from subscribers.rebuilds.guard import routed
from subscribers.registry import Registered


@dataclass(frozen=True)
class Replayed:
    """One batch replayed: how many applied, where the bookmark may go, the failure."""

    applied: int
    position: Cursor
    failure: Failure | None
    #: True when the batch was full (more events may wait before ``upto``).
    full: bool


def _between(
    entry: Registered, after: Cursor, upto: Cursor, query: str, of_types: str
) -> tuple[str, dict[str, Any]]:
    """The query over the projection's events in (``after``, ``upto``], and its parameters:
    ``of_types`` when the projection wants only some event types."""
    params: dict[str, Any] = {"tx": after[0], "pos": after[1], "to_tx": upto[0], "to_pos": upto[1]}
    if entry.event_types is None:
        return query, params
    return of_types, {**params, "types": list(entry.event_types)}


def read_upto(entry: Registered, after: Cursor, upto: Cursor, limit: int) -> list[RecordedEvent]:
    """Up to ``limit`` of the projection's events after ``after``, none past ``upto``."""
    query, params = _between(entry, after, upto, sql.READ_UPTO, sql.READ_UPTO_OF_TYPES)
    with connection.cursor() as cursor:
        return [
            row_to_event(row) for row in fetch_events(cursor, query, {**params, "limit": limit})
        ]


def count_upto(entry: Registered, after: Cursor, upto: Cursor) -> int:
    """How many of the projection's events lie after ``after``, none past ``upto``."""
    query, params = _between(entry, after, upto, sql.COUNT_UPTO, sql.COUNT_UPTO_OF_TYPES)
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return int(cursor.fetchone()[0])


def replay_batch(rebuild: Rebuild, entry: Registered, upto: Cursor, limit: int) -> Replayed:
    """Apply the next batch (at most ``limit`` events, none past ``upto``) to the new
    tables, in the open transaction; the caller moves the rebuild's bookmark."""
    events = read_upto(entry, rebuild.cursor, upto, limit)
    applied, failure = 0, None
    if events:
        with routed(rebuild):
            applied, failure = replay_events(entry, events)
    full = len(events) >= limit
    if failure is not None:
        position = events[applied - 1].cursor if applied else rebuild.cursor
    elif full:
        position = events[-1].cursor
    else:
        # A short batch saw every wanted event up to ``upto``: the live projection stands
        # there, so no event can still appear at or before it.
        position = max(upto, rebuild.cursor)
    return Replayed(applied, position, failure, full and failure is None)


def apply_upto(rebuild: Rebuild, entry: Registered, upto: Cursor) -> tuple[int, Cursor]:
    """Apply every event up to ``upto`` (the swap's last events); raise on a failure."""
    from subscribers.rebuilds.errors import REBUILD_NOT_READY, RebuildRefused

    total, limit = 0, max(rebuild.batch_size, 100)
    while True:
        done = replay_batch(rebuild, entry, upto, limit)
        total += done.applied
        if done.failure is not None:
            raise RebuildRefused(
                REBUILD_NOT_READY,
                f"event {done.failure.event.event_id} failed in the new tables:"
                f" {done.failure.error[:500]}",
            )
        rebuild.last_transaction_id, rebuild.last_position = done.position
        if not done.full:
            return total, done.position
