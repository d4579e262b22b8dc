"""Reading a stream-ordered reaction's rows for an operator's act, under its locks."""

from __future__ import annotations

from typing import TypeVar

from django.db import connection
from django.db.backends.utils import CursorWrapper

from eventstore.types import Cursor
from reactions_admin import errors
from reactions_admin.acts.parked_streams.decider import StreamRejected, WorkItem
from subscribers import sql
from subscribers.registry import configured_registry

T = TypeVar("T")


def is_stream_ordered(name: str) -> bool:
    """Whether reaction ``name`` keeps order per stream: it is configured so, or it has
    unfinished stream work (its rows must be handled or dismissed, never passed over)."""
    registry = configured_registry()
    entry = registry.get(name) if registry else None
    if entry is not None and entry.stream_ordered:
        return True
    with connection.cursor() as cursor:
        cursor.execute(sql.HAS_WORK, {"name": name})
        return bool(cursor.fetchone()[0])


def accepted(decision: T | StreamRejected) -> T:
    """``decision`` unless it is a ``StreamRejected``, which is raised as its error."""
    if isinstance(decision, StreamRejected):
        raise errors.from_rejection(decision)
    return decision


def locked_stream(cursor: CursorWrapper, name: str, stream_id: str) -> list[WorkItem]:
    """The unfinished rows of one stream of reaction ``name``, head first, locked
    ``FOR UPDATE`` for the caller's transaction (the bookmark row already held)."""
    cursor.execute(sql.LOCK_STREAM_WORK, {"name": name, "stream": stream_id})
    return [
        WorkItem(r[0], r[1], r[2], Cursor(int(r[3]), int(r[4])), int(r[5]), bool(r[6]), bool(r[7]))
        for r in cursor.fetchall()
    ]
