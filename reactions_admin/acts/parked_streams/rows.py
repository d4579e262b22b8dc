"""A stream-ordered reaction's work rows, as the acts on its parked streams read and change
them: inside the act's transaction, the bookmark row already locked (the worker takes the
same locks in the same order, so an act never deadlocks with it)."""

from __future__ import annotations

import uuid

from django.db import connection

from eventstore.types import Cursor
from reactions_admin.acts.parked_streams.decider import WorkItem
from subscribers import sql


def locked_stream(name: str, stream_id: str) -> list[WorkItem]:
    """The unfinished rows of one stream of reaction ``name``, head first, locked
    ``FOR UPDATE`` for the caller's transaction."""
    with connection.cursor() as cursor:
        cursor.execute(sql.LOCK_STREAM_WORK, {"name": name, "stream": stream_id})
        found = cursor.fetchall()
    return [
        WorkItem(r[0], r[1], r[2], Cursor(int(r[3]), int(r[4])), int(r[5]), bool(r[6]), bool(r[7]))
        for r in found
    ]


def stream_head(name: str, stream_id: str) -> uuid.UUID | None:
    """The event id of the earliest unfinished row of the stream, if it has one."""
    with connection.cursor() as cursor:
        cursor.execute(sql.STREAM_HEAD, {"name": name, "stream": stream_id})
        row = cursor.fetchone()
    return None if row is None else uuid.UUID(str(row[0]))


def delete_rows(name: str, event_ids: list[uuid.UUID]) -> None:
    """Delete the (locked) rows of these events: they are dismissed."""
    with connection.cursor() as cursor:
        cursor.execute(sql.DELETE_WORK_EVENTS, {"name": name, "event_ids": event_ids})
        if len(cursor.fetchall()) != len(event_ids):  # the rows are locked: cannot happen
            raise RuntimeError("a locked work row disappeared")


def unpark_head(name: str, event_id: uuid.UUID) -> None:
    """Make the parked head runnable at once, its attempts kept."""
    with connection.cursor() as cursor:
        cursor.execute(sql.UNPARK_STREAM_HEAD, {"name": name, "event_id": event_id})
