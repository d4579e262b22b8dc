"""Subscribers and tables for the reliability tests (worker processes load them by dotted path).

The read models are plain tables (not Django models: the test flush leaves them, the
fixture recreates them). Every subscriber also logs what it did to ``rel_applied``
(projections) or ``rel_effects`` (a reaction's outside effect), with the worker's pid,
and notes in ``rel_overlaps`` whenever it finds another session already working the
same subscriber (a per-subscriber advisory lock it could not take).
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from typing import Any

from django.db import connection

from eventstore import NewEvent, RecordedEvent, StreamAppend

#: Prefix of the dotted paths that select these subscribers (worker processes' environment).
R = "tests.reliability.subscribers."
#: The two projections and the reaction over the mixed feed (Orders and Receipts), and
#: their names.
MIXED_FEED_SUBSCRIBERS = [R + "Totals", R + "BatchTotals", R + "Receipts"]
MIXED_FEED_NAMES = ("rel.totals", "rel.batch_totals", "rel.receipts")

#: Advisory-lock namespace of the overlap check (apart from the store's own locks).
OVERLAP_NAMESPACE = 0x52_45_4C_31  # "REL1"

TABLES = """
DROP TABLE IF EXISTS rel_totals, rel_batch_totals, rel_applied, rel_effects, rel_overlaps,
    rel_bookmark_moves CASCADE;
CREATE TABLE rel_totals (
    event_type text NOT NULL, key text NOT NULL, n bigint NOT NULL, total bigint NOT NULL,
    PRIMARY KEY (event_type, key)
);
CREATE TABLE rel_batch_totals (key text PRIMARY KEY, n bigint NOT NULL, total bigint NOT NULL);
CREATE TABLE rel_applied (
    seq bigint GENERATED ALWAYS AS IDENTITY, subscriber text NOT NULL, event_id uuid NOT NULL,
    tx bigint NOT NULL, position bigint NOT NULL, pid int NOT NULL
);
CREATE TABLE rel_effects (
    seq bigint GENERATED ALWAYS AS IDENTITY, subscriber text NOT NULL, event_id uuid NOT NULL,
    pid int NOT NULL
);
CREATE TABLE rel_overlaps (subscriber text NOT NULL, pid int NOT NULL);
CREATE TABLE rel_bookmark_moves (
    seq bigint GENERATED ALWAYS AS IDENTITY, subscriber text NOT NULL,
    old_tx bigint NOT NULL, old_pos bigint NOT NULL, new_tx bigint NOT NULL, new_pos bigint NOT NULL
);
CREATE OR REPLACE FUNCTION rel_record_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.last_transaction_id, NEW.last_position)
       IS DISTINCT FROM (OLD.last_transaction_id, OLD.last_position) THEN
        INSERT INTO rel_bookmark_moves (subscriber, old_tx, old_pos, new_tx, new_pos) VALUES
            (NEW.subscriber_name, OLD.last_transaction_id, OLD.last_position,
             NEW.last_transaction_id, NEW.last_position);
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS rel_record_move ON projection_bookmarks;
CREATE TRIGGER rel_record_move AFTER UPDATE ON projection_bookmarks
    FOR EACH ROW EXECUTE FUNCTION rel_record_move();
"""

DROP_TABLES = """
DROP TRIGGER IF EXISTS rel_record_move ON projection_bookmarks;
DROP FUNCTION IF EXISTS rel_record_move();
DROP TABLE IF EXISTS rel_totals, rel_batch_totals, rel_applied, rel_effects, rel_overlaps,
    rel_bookmark_moves CASCADE;
"""

#: The read models recomputed from the events themselves (what the projections must equal).
EXPECTED_TOTALS = """
SELECT event_type, data->>'key', count(*), sum((data->>'amount')::bigint) FROM events
WHERE data ? 'key' GROUP BY 1, 2 ORDER BY 1, 2
"""
ACTUAL_TOTALS = "SELECT event_type, key, n, total FROM rel_totals ORDER BY 1, 2"
EXPECTED_BATCH_TOTALS = """
SELECT data->>'key', count(*), sum((data->>'amount')::bigint) FROM events
WHERE event_type IN ('Tick', 'Order') AND data ? 'key' GROUP BY 1 ORDER BY 1
"""
ACTUAL_BATCH_TOTALS = "SELECT key, n, total FROM rel_batch_totals ORDER BY 1"


def _exclusive(cursor: Any, name: str) -> None:
    """Note an overlap if another session holds this subscriber's lock (held to commit)."""
    cursor.execute("SELECT pg_try_advisory_xact_lock(%s, hashtext(%s))", [OVERLAP_NAMESPACE, name])
    if not cursor.fetchone()[0]:
        cursor.execute("INSERT INTO rel_overlaps VALUES (%s, %s)", [name, os.getpid()])


def _log_applied(cursor: Any, name: str, event: RecordedEvent) -> None:
    """Log that ``name`` applied ``event`` in this worker (checked: every event once)."""
    cursor.execute(
        "INSERT INTO rel_applied (subscriber, event_id, tx, position, pid)"
        " VALUES (%s, %s, %s, %s, %s)",
        [name, event.event_id, event.transaction_id, event.position, os.getpid()],
    )


def _poisoned(event: RecordedEvent, kind: str) -> bool:
    return bool(event.data.get("poison") == kind)


class Totals:
    """Per (event type, key): count and sum of amounts, one upsert per event (``apply``)."""

    name = "rel.totals"
    batch_size = 100

    def apply(self, event: RecordedEvent) -> None:
        if "key" not in event.data:
            return
        with connection.cursor() as cursor:
            _exclusive(cursor, self.name)
            cursor.execute(
                "INSERT INTO rel_totals VALUES (%s, %s, 1, %s) ON CONFLICT (event_type, key)"
                " DO UPDATE SET n = rel_totals.n + 1, total = rel_totals.total + EXCLUDED.total",
                [event.event_type, event.data["key"], int(event.data.get("amount", 0))],
            )
            _log_applied(cursor, self.name, event)


class BatchTotals:
    """Per key, over Ticks and Orders: one bulk upsert per batch (``apply_batch``)."""

    name = "rel.batch_totals"
    event_types = ("Tick", "Order")
    batch_size = 250

    def apply_batch(self, events: list[RecordedEvent]) -> None:
        sums: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for event in events:
            entry = sums[str(event.data["key"])]
            entry[0] += 1
            entry[1] += int(event.data.get("amount", 0))
        with connection.cursor() as cursor:
            _exclusive(cursor, self.name)
            cursor.execute(
                "INSERT INTO rel_batch_totals SELECT * FROM unnest(%s::text[], %s::bigint[],"
                " %s::bigint[]) ON CONFLICT (key) DO UPDATE SET n = rel_batch_totals.n"
                " + EXCLUDED.n, total = rel_batch_totals.total + EXCLUDED.total",
                [list(sums), [v[0] for v in sums.values()], [v[1] for v in sums.values()]],
            )
            cursor.execute(
                "INSERT INTO rel_applied (subscriber, event_id, tx, position, pid)"
                " SELECT %s, unnest(%s::uuid[]), unnest(%s::bigint[]), unnest(%s::bigint[]), %s",
                [
                    self.name,
                    [e.event_id for e in events],
                    [e.transaction_id for e in events],
                    [e.position for e in events],
                    os.getpid(),
                ],
            )


class Recorder:
    """Logs every event it applies (the out-of-order test's witness)."""

    name = "rel.recorder"
    batch_size = 100

    def apply(self, event: RecordedEvent) -> None:
        with connection.cursor() as cursor:
            _log_applied(cursor, self.name, event)


class Receipts:
    """Answers each Order with a Receipt on a stream of its own.

    The append names no expected version, so a second append for the same order would
    land (as version 2) rather than be refused: exactly-once is the worker's to keep.
    The outside effect (a row in ``rel_effects``, written on its own) is at-least-once.
    ``REL_HANDLE_SECONDS`` makes each handle slow enough to be killed inside.
    """

    name = "rel.receipts"
    event_types = ("Order",)
    batch_size = 5

    def handle(self, event: RecordedEvent) -> list[StreamAppend]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_try_advisory_lock(%s, hashtext(%s))", [OVERLAP_NAMESPACE, self.name]
            )
            if not cursor.fetchone()[0]:
                cursor.execute("INSERT INTO rel_overlaps VALUES (%s, %s)", [self.name, os.getpid()])
            try:
                cursor.execute(
                    "INSERT INTO rel_effects (subscriber, event_id, pid) VALUES (%s, %s, %s)",
                    [self.name, event.event_id, os.getpid()],
                )
                time.sleep(float(os.environ.get("REL_HANDLE_SECONDS", "0")))
            finally:
                cursor.execute(
                    "SELECT pg_advisory_unlock(%s, hashtext(%s))", [OVERLAP_NAMESPACE, self.name]
                )
        receipt = NewEvent(
            "Receipt", {"order": str(event.event_id), "key": event.data["key"], "amount": 0}
        )
        return [StreamAppend(f"receipt-{event.event_id}", [receipt])]


# --- bad subscriber code ---------------------------------------------------------------


class Raises:
    """A projection with a bug: raises on the event marked ``poison=raise``."""

    name = "rel.raises"
    batch_size = 10

    def apply(self, event: RecordedEvent) -> None:
        if _poisoned(event, "raise"):
            raise ValueError(f"cannot project {event.event_id}")
        with connection.cursor() as cursor:
            _log_applied(cursor, self.name, event)


class Hangs:
    """A projection that never returns on the event marked ``poison=hang`` (a deadlocked
    client library, a socket with no timeout): only the worker's batch timeout ends it."""

    name = "rel.hangs"
    batch_size = 10

    def apply(self, event: RecordedEvent) -> None:
        if _poisoned(event, "hang"):
            threading.Event().wait()  # forever, and deaf to anything but process exit
        with connection.cursor() as cursor:
            _log_applied(cursor, self.name, event)


class ReturnsGarbage:
    """A reaction that returns something other than appends for ``poison=garbage``."""

    name = "rel.garbage"
    event_types = ("Order",)
    batch_size = 1

    def handle(self, event: RecordedEvent) -> Any:
        if _poisoned(event, "garbage"):
            return {"status": "ok", "note": "a dict, not a list of StreamAppend"}
        return None
