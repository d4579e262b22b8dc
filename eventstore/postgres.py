"""The PostgreSQL event store."""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC
from typing import Any

from django.db import DataError, IntegrityError, connections, transaction
from psycopg.types.datetime import TimestamptzLoader

from eventstore import sql
from eventstore.store import EventStore
from eventstore.types import (
    START,
    ConcurrencyError,
    Cursor,
    InvalidAppend,
    RecordedEvent,
    StreamAppend,
    validate_appends,
)

#: The JSON text of the metadata most events carry: decoded without the parser.
_EMPTY_OBJECT = "{}"


def fetch_events(cursor: Any, query: str, params: Mapping[str, Any]) -> list[Any]:
    """Run ``query`` (which selects ``sql.EVENT_COLUMNS``) on Django ``cursor``; its rows.

    ``recorded_at`` is loaded by psycopg's own ``timestamptz`` loader, the compiled one,
    instead of the pure-Python subclass Django registers: a rebuild reads a whole history
    and that subclass was 8 % of its time. The value is the same: Django's loader
    is psycopg's with its result's time zone replaced by the connection's, which this
    loader reads from the same place (the session's ``TimeZone``, UTC under Django's
    ``USE_TZ``)."""
    if getattr(cursor.db, "timezone", None) is UTC:
        cursor.cursor.adapters.register_loader("timestamptz", TimestamptzLoader)
    cursor.execute(query, params)
    return cursor.fetchall()  # type: ignore[no-any-return]


def row_to_event(row: Sequence[Any]) -> RecordedEvent:
    """A row selected with ``sql.EVENT_COLUMNS`` as a ``RecordedEvent``."""
    data, metadata = row[6], row[7]
    if metadata == _EMPTY_OBJECT:
        metadata = {}
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


#: How often an append outside a transaction tries the optimistic way (no lock, one round
#: trip) before it falls back to the lock path, which always lands. Under contention an
#: optimistic try loses to whichever append reaches the stream's next version first, and
#: nothing makes the losers take turns: one appender can lose any number of times.
OPTIMISTIC_TRIES = 3


class PostgresEventStore(EventStore):
    """The ``events`` table, through Django's connection (so it joins the caller's transaction)."""

    durable = True

    def __init__(self, using: str = "default") -> None:
        self.using = using

    def append_streams(self, appends: Sequence[StreamAppend]) -> list[RecordedEvent]:
        checked = validate_appends(appends)
        document = _rows_document(checked)
        try:
            if connections[self.using].in_atomic_block:
                return self._append_in_transaction(checked, document)
            return self._append_alone(checked, document)
        except IntegrityError as exc:
            raise _integrity_to_domain(exc) from exc
        except DataError as exc:
            # What Python accepted but PostgreSQL cannot store (a lone surrogate, say).
            raise InvalidAppend(f"PostgreSQL refused the event data: {exc}") from exc

    def _append_alone(
        self, checked: list[tuple[StreamAppend, list[str]]], document: str
    ) -> list[RecordedEvent]:
        """No transaction is open: the append is one statement, atomic by itself, in one
        round trip. Streams with no expected version take no lock: if a concurrent append
        takes their next version first, the unique index refuses ours and we try again, a
        few times, then take the lock path (a transaction of our own)."""
        if all(a.expected_version is not None for a, _ in checked):
            # Every version is named: a race lost is the caller's ConcurrencyError.
            return self._insert(checked, document)
        for _ in range(OPTIMISTIC_TRIES):
            try:
                landed = self._try_insert(checked, document, sql.INSERT_EVENTS_UNLESS_LOCKED)
            except IntegrityError as exc:
                if _constraint(exc) != "events_stream_version_unique":
                    raise
                continue
            if landed is None:
                break  # a stream is locked, or an expected version is off: the lock path decides
            return landed
        with transaction.atomic(using=self.using):
            return self._append_locked(checked, document)

    def _append_in_transaction(
        self, checked: list[tuple[StreamAppend, list[str]]], document: str
    ) -> list[RecordedEvent]:
        """Inside a caller's transaction (a dismissal, a reaction's compare-and-set).

        One event with no expected version (a decision) tries first to take its stream's
        lock and land in one round trip; when the lock is held, or another append took
        the version first, or the transaction is not READ COMMITTED, it goes the lock
        path. A decision's transaction holds every reader of events back until it
        commits: each round trip saved is a wait saved. That try has no savepoint: an
        error in it (a duplicate event id, say) fails the caller's transaction, as an
        append that names its versions does."""
        if all(a.expected_version is not None for a, _ in checked):
            return self._insert(checked, document)
        if sum(len(a.events) for a, _ in checked) == 1:
            landed = self._try_insert(checked, document, sql.INSERT_EVENT_UNLESS_LOCKED_OR_TAKEN)
            if landed is not None:
                return landed
        return self._append_locked(checked, document)

    def _append_locked(
        self, checked: list[tuple[StreamAppend, list[str]]], document: str
    ) -> list[RecordedEvent]:
        """Lock the "any version" streams (until the transaction ends), then insert.

        Holding the locks, the append races no other "any version" append (optimistic
        ones defer to the lock), only one naming its expected version. Such a race lost
        fails the statement, so each try runs in a savepoint: the caller's transaction
        survives it, and the next try (a new snapshot under READ COMMITTED) sees the
        winner's events. Every refusal means another append landed, so this one does too.
        """
        unchecked = sorted(a.stream_id for a, _ in checked if a.expected_version is None)
        with connections[self.using].cursor() as cursor:
            cursor.execute(
                sql.LOCK_STREAMS, {"namespace": sql.STREAM_NAMESPACE, "streams": unchecked}
            )
        refused = ""
        while True:
            try:
                with transaction.atomic(using=self.using):
                    return self._insert(checked, document)
            except IntegrityError as exc:
                if _constraint(exc) != "events_stream_version_unique":
                    raise
                # The same key refused twice: the snapshot is not new (a caller's
                # REPEATABLE READ transaction), so trying again cannot help.
                if _detail(exc) == refused:
                    raise
                refused = _detail(exc)

    def _insert(
        self, checked: list[tuple[StreamAppend, list[str]]], document: str
    ) -> list[RecordedEvent]:
        """Insert the events; ConcurrencyError when an expected version is off."""
        landed = self._try_insert(checked, document, sql.INSERT_EVENTS)
        if landed is None:
            with connections[self.using].cursor() as cursor:
                raise self._conflict(cursor, checked)
        return landed

    def _try_insert(
        self, checked: list[tuple[StreamAppend, list[str]]], document: str, query: str
    ) -> list[RecordedEvent] | None:
        """The recorded events, or None when the statement inserted nothing."""
        with connections[self.using].cursor() as cursor:
            cursor.execute(query, {"rows": document})
            returned = cursor.fetchall()
        if not returned:
            return None
        recorded = {row[0]: row[1:] for row in returned}
        events: list[RecordedEvent] = []
        for append, texts in checked:
            for offset, event in enumerate(append.events):
                position, transaction_id, version, recorded_at = recorded[event.event_id]
                events.append(
                    RecordedEvent(
                        position=position,
                        transaction_id=int(transaction_id),
                        event_id=event.event_id,
                        stream_id=append.stream_id,
                        stream_version=version,
                        event_type=event.event_type,
                        data=json.loads(texts[2 * offset]),
                        metadata=json.loads(texts[2 * offset + 1]),
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

    def read_after(
        self, after: Cursor, limit: int, event_types: Collection[str] | None
    ) -> list[RecordedEvent]:
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

    def count_between(
        self, after: Cursor, upto: Cursor, event_types: Collection[str] | None = None
    ) -> int:
        if upto <= after:
            return 0
        params: dict[str, Any] = {
            "after_tx": after.transaction_id,
            "after_pos": after.position,
            "upto_tx": upto.transaction_id,
            "upto_pos": upto.position,
        }
        query = sql.COUNT_BETWEEN
        if event_types is not None:
            query = sql.COUNT_BETWEEN_OF_TYPES
            params["types"] = list(event_types)
        with connections[self.using].cursor() as cursor:
            cursor.execute(query, params)
            row = cursor.fetchone()
        return int(row[0]) if row else 0

    def is_visible(self, cursor: Cursor) -> bool:
        with connections[self.using].cursor() as db:
            db.execute(sql.VISIBLE, {"tx": cursor.transaction_id})
            row = db.fetchone()
        return bool(row and row[0])

    def _select(self, query: str, params: dict[str, Any]) -> list[RecordedEvent]:
        with connections[self.using].cursor() as cursor:
            return [row_to_event(row) for row in fetch_events(cursor, query, params)]


def _rows_document(checked: list[tuple[StreamAppend, list[str]]]) -> str:
    """The rows of an append as one JSON document (data and metadata are JSON already).

    The statement text stays constant whatever the batch size, so psycopg prepares it
    once per connection, and PostgreSQL parses all the rows in one pass.
    """
    rows: list[str] = []
    for append, texts in checked:
        stream = json.dumps(append.stream_id)
        expected = "null" if append.expected_version is None else str(append.expected_version)
        for offset, event in enumerate(append.events):
            rows.append(
                f'{{"n":{len(rows)},"event_id":"{event.event_id}","stream_id":{stream},'
                f'"k":{offset + 1},"event_type":{json.dumps(event.event_type)},'
                f'"data":{texts[2 * offset]},"metadata":{texts[2 * offset + 1]},'
                f'"expected":{expected}}}'
            )
    return "[" + ",".join(rows) + "]"


def _constraint(exc: IntegrityError) -> str:
    return getattr(getattr(exc.__cause__, "diag", None), "constraint_name", "") or ""


def _integrity_to_domain(exc: IntegrityError) -> Exception:
    constraint = _constraint(exc)
    if "event_id" in constraint:
        return InvalidAppend("an event with this event_id is already recorded")
    if constraint == "events_stream_version_unique":
        # Another transaction appended to the stream between our version read and our
        # insert; the unique index refused ours. Same outcome as a stale expected version.
        return ConcurrencyError(_stream_of(exc), -1, -1)
    return exc


def _detail(exc: IntegrityError) -> str:
    return getattr(getattr(exc.__cause__, "diag", None), "message_detail", "") or ""


def _stream_of(exc: IntegrityError) -> str:
    detail = _detail(exc)
    # "Key (stream_id, stream_version)=(order-1, 2) already exists."
    if "=(" in detail:
        return detail.split("=(", 1)[1].rsplit(", ", 1)[0]
    return "(unknown stream)"
