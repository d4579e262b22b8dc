"""Reading a stream-ordered reaction's work: parked streams, one stream's rows, the figures.

For the operator surface (the parked-streams page, REST, MCP, CLI, the diagnosis);
nothing here writes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from eventstore.types import Cursor
from subscribers import sql


@dataclass(frozen=True)
class ParkedStream:
    """A stream parked for one reaction: its head event, why, and how many wait behind."""

    stream_id: str
    event_id: uuid.UUID
    event_type: str
    cursor: Cursor
    attempts: int
    last_error: str
    #: When the head last parked (after a failed "retry now": that failure).
    parked_at: datetime
    waiting: int
    #: When the head first parked: how long the stream has been stuck.
    first_parked_at: datetime


@dataclass(frozen=True)
class WorkRow:
    """One unfinished event of a stream-ordered reaction."""

    row_id: int
    event_id: uuid.UUID
    event_type: str
    cursor: Cursor
    attempts: int
    lease_token: str
    lease_expires_at: datetime | None
    next_retry_at: datetime | None
    last_error: str
    failed_at: datetime | None
    parked_at: datetime | None


@dataclass(frozen=True)
class WorkSummary:
    """The figures of one stream-ordered reaction's work table."""

    unfinished: int
    in_flight: int
    parked_streams: int
    oldest_parked: datetime | None
    #: Unfinished rows of streams that are not parked (what ``intake_limit`` bounds).
    open_rows: int
    #: Since when intake has been paused, the open rows at ``intake_limit`` (None: it
    #: is not): the reaction takes in no new event until some of them finish.
    intake_paused_at: datetime | None = None


def parked_streams(name: str) -> list[ParkedStream]:
    """The streams parked for reaction ``name``, the longest stuck (first parked) first."""
    with connection.cursor() as cursor:
        cursor.execute(sql.PARKED_STREAMS, {"name": name})
        return [
            ParkedStream(
                r[0], r[1], r[2], Cursor(int(r[3]), int(r[4])), r[5], r[6], r[7], r[8], r[9]
            )
            for r in cursor.fetchall()
        ]


def stream_rows(name: str, stream_id: str) -> list[WorkRow]:
    """The unfinished rows of one stream for reaction ``name``, head first."""
    with connection.cursor() as cursor:
        cursor.execute(sql.STREAM_WORK, {"name": name, "stream": stream_id})
        return [
            WorkRow(r[0], r[1], r[2], Cursor(int(r[3]), int(r[4])), *r[5:])
            for r in cursor.fetchall()
        ]


def work_summary(name: str) -> WorkSummary:
    """Unfinished rows, in flight, parked streams (and the oldest), rows that count
    against ``intake_limit``, and since when intake is paused at that limit."""
    with connection.cursor() as cursor:
        cursor.execute(sql.WORK_SUMMARY, {"name": name})
        row = cursor.fetchone()
    return WorkSummary(int(row[0]), int(row[1]), int(row[2]), row[3], int(row[4]), row[5])
