"""The PostgreSQL event store."""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Sequence
from typing import Any

from django.db import IntegrityError, connections, transaction

from eventstore import sql
from eventstore.types import (
    START,
    ConcurrencyError,
    Cursor,
    InvalidAppend,
    RecordedEvent,
    StreamAppend,
    validate_appends,
)


def row_to_event(row: Sequence[Any]) -> RecordedEvent:
    """A row selected with ``sql.EVENT_COLUMNS`` as a ``RecordedEvent``."""
    data, metadata = row[6], row[7]
    return RecordedEvent(
        position=row[0],
        transaction_id=int(row[1]),
        event_id=row[2],
        stream_id=row[3],
        stream_version=row[4],
        event_type=row[5],
        data=json.loads(data) if isinstance(data, str) else data,
        metadata=json.loads(metadata) if isinstance(metadata, str) else metadata,
        recorded_at=row[8],
    )


class PostgresEventStore:
    """The ``events`` table, through Django's connection (so it joins the caller's transaction)."""

    durable = True

    def __init__(self, using: str = "default") -> None:
        self.using = using

    def append_streams(self, appends: Sequence[StreamAppend]) -> list[RecordedEvent]:
        checked = validate_appends(appends)
        try:
            # savepoint=False: inside a caller's transaction (a dismissal, a reaction's
            # compare-and-set) a failed append fails that whole transaction.
            with transaction.atomic(using=self.using, savepoint=False):
                return self._append(checked)
        except IntegrityError as exc:
            raise _integrity_to_domain(exc) from exc

    def _append(self, checked: list[tuple[StreamAppend, list[str]]]) -> list[RecordedEvent]:
        unchecked = sorted(a.stream_id for a, _ in checked if a.expected_version is None)
        columns: dict[str, list[Any]] = {
            name: []
            for name in ("n", "event_id", "stream_id", "k", "event_type", "data", "metadata")
        }
        expected: list[int | None] = []
        for append, texts in checked:
            for offset, event in enumerate(append.events):
                columns["n"].append(len(expected))
                columns["event_id"].append(event.event_id)
                columns["stream_id"].append(append.stream_id)
                columns["k"].append(offset + 1)
                columns["event_type"].append(event.event_type)
                columns["data"].append(texts[2 * offset])
                columns["metadata"].append(texts[2 * offset + 1])
                expected.append(append.expected_version)
        with connections[self.using].cursor() as cursor:
            if unchecked:
                cursor.execute(
                    sql.LOCK_STREAMS, {"namespace": sql.STREAM_NAMESPACE, "streams": unchecked}
                )
            # One statement whatever the batch size: the rows travel as arrays, so the
            # text is constant and psycopg prepares it once per connection.
            cursor.execute(sql.INSERT_EVENTS, {**columns, "expected": expected})
            returned = cursor.fetchall()
            if not returned:
                raise self._conflict(cursor, checked)
        recorded = {row[0]: row[1:] for row in returned}
        events: list[RecordedEvent] = []
        for index, event_id in enumerate(columns["event_id"]):
            position, transaction_id, version, recorded_at = recorded[event_id]
            events.append(
                RecordedEvent(
                    position=position,
                    transaction_id=int(transaction_id),
                    event_id=event_id,
                    stream_id=columns["stream_id"][index],
                    stream_version=version,
                    event_type=columns["event_type"][index],
                    data=json.loads(columns["data"][index]),
                    metadata=json.loads(columns["metadata"][index]),
                    recorded_at=recorded_at,
                )
            )
        return events

    @staticmethod
    def _conflict(cursor: Any, checked: list[tuple[StreamAppend, list[str]]]) -> ConcurrencyError:
        """The insert wrote nothing: name the stream whose version was not the expected one."""
        cursor.execute(sql.STREAM_VERSIONS, {"streams": [a.stream_id for a, _ in checked]})
        current = {stream: int(version) for stream, version in cursor.fetchall()}
        for append, _ in checked:
            actual = current.get(append.stream_id, 0)
            if append.expected_version is not None and append.expected_version != actual:
                return ConcurrencyError(append.stream_id, append.expected_version, actual)
        return ConcurrencyError(checked[0][0].stream_id, -1, -1)  # raced, then resolved

    def read_all(
        self,
        after: Cursor = START,
        limit: int = 100,
        event_types: Collection[str] | None = None,
    ) -> list[RecordedEvent]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        params: dict[str, Any] = {"tx": after.transaction_id, "pos": after.position, "limit": limit}
        query = sql.READ_AFTER
        if event_types is not None:
            query = sql.READ_AFTER_OF_TYPES
            params["types"] = list(event_types)
        return self._select(query, params)

    def read_stream(
        self, stream_id: str, from_version: int = 1, limit: int | None = None
    ) -> list[RecordedEvent]:
        return self._select(
            sql.READ_STREAM, {"stream": stream_id, "from_version": from_version, "limit": limit}
        )

    def head(self) -> Cursor:
        with connections[self.using].cursor() as cursor:
            cursor.execute(sql.HEAD)
            row = cursor.fetchone()
        return START if row is None else Cursor(int(row[0]), int(row[1]))

    def get_event(self, event_id: uuid.UUID) -> RecordedEvent | None:
        found = self._select(sql.GET_EVENT, {"event_id": event_id})
        return found[0] if found else None

    def count_between(self, after: Cursor, upto: Cursor) -> int:
        if upto <= after:
            return 0
        with connections[self.using].cursor() as cursor:
            cursor.execute(
                sql.COUNT_BETWEEN,
                {
                    "after_tx": after.transaction_id,
                    "after_pos": after.position,
                    "upto_tx": upto.transaction_id,
                    "upto_pos": upto.position,
                },
            )
            row = cursor.fetchone()
        return int(row[0]) if row else 0

    def _select(self, query: str, params: dict[str, Any]) -> list[RecordedEvent]:
        with connections[self.using].cursor() as cursor:
            cursor.execute(query, params)
            return [row_to_event(row) for row in cursor.fetchall()]


def _integrity_to_domain(exc: IntegrityError) -> Exception:
    constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", "") or ""
    if "event_id" in constraint:
        return InvalidAppend("an event with this event_id is already recorded")
    if constraint == "events_stream_version_unique":
        # Another transaction appended to the stream between our version read and our
        # insert; the unique index refused ours. Same outcome as a stale expected version.
        return ConcurrencyError(_stream_of(exc), -1, -1)
    return exc


def _stream_of(exc: IntegrityError) -> str:
    detail = getattr(getattr(exc.__cause__, "diag", None), "message_detail", "") or ""
    # "Key (stream_id, stream_version)=(order-1, 2) already exists."
    if "=(" in detail:
        return detail.split("=(", 1)[1].rsplit(", ", 1)[0]
    return "(unknown stream)"
