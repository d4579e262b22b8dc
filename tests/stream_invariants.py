"""What a stream-ordered reaction left behind: answers per stream, waiting rows, invariants."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db import connection

from tests.support import backends, wait_for


def rows(query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return [tuple(row) for row in cursor.fetchall()]


def _by_stream(query: str, params: Any = None) -> dict[str, list[str]]:
    """Rows of (stream, job id), grouped by stream in the order the query returns them."""
    found: dict[str, list[str]] = defaultdict(list)
    for stream, event_id in rows(query, params):
        found[stream].append(event_id)
    return dict(found)


def handled_by_stream() -> dict[str, list[str]]:
    """Per job stream, the job ids answered, in the order the answers were appended."""
    return _by_stream(
        "SELECT data->>'stream', data->>'event_id' FROM events WHERE event_type = 'Handled'"
        " ORDER BY stream_id, stream_version"
    )


def jobs_by_stream() -> dict[str, list[str]]:
    """Per stream, the job ids in stream order ``(transaction_id, position)``."""
    return _by_stream(
        "SELECT stream_id, event_id::text FROM events WHERE event_type = 'Job'"
        " ORDER BY transaction_id, position"
    )


def waiting_by_stream(name: str) -> dict[str, list[str]]:
    """Per stream, the job ids still in the work table, in stream order."""
    return _by_stream(
        "SELECT stream_id, event_id::text FROM reaction_work WHERE subscriber_name = %s"
        " ORDER BY transaction_id, position",
        [name],
    )


def handled_count() -> int:
    return int(rows("SELECT count(*) FROM events WHERE event_type = 'Handled'")[0][0])


def doubled() -> list[tuple[Any, ...]]:
    """Job ids answered more than once (there must be none)."""
    return rows(
        "SELECT data->>'event_id', count(*) FROM events WHERE event_type = 'Handled'"
        " GROUP BY 1 HAVING count(*) > 1"
    )


def check_streams(name: str, *, complete: bool = True) -> None:
    """Every stream: its answered jobs come first, in stream order, then the jobs waiting
    in the work table, in order; nothing answered twice. ``complete``: and that is all of
    its jobs (nothing passed over); otherwise the rest is not taken in yet."""
    answered, waiting = handled_by_stream(), waiting_by_stream(name)
    assert doubled() == []
    for stream, ids in jobs_by_stream().items():
        seen = answered.get(stream, []) + waiting.get(stream, [])
        if complete:
            assert seen == ids, f"stream {stream}"
        else:
            assert seen == ids[: len(seen)], f"stream {stream}"


def intake_point(name: str) -> tuple[int, int]:
    row = rows(
        "SELECT last_transaction_id, last_position FROM projection_bookmarks"
        " WHERE subscriber_name = %s",
        [name],
    )
    return (int(row[0][0]), int(row[0][1])) if row else (0, 0)


def peaks_until_handled(
    application_name: str, count: int, *, timeout: float, what: str
) -> dict[str, int]:
    """Wait until ``count`` jobs are answered, noting meanwhile the most server sessions
    open as ``application_name`` (a worker's) and the most work rows under a live lease
    (``handle`` calls in flight); returns both peaks."""
    most = {"backends": 0, "in_flight": 0}

    def done() -> bool:
        most["backends"] = max(most["backends"], backends(application_name))
        in_flight = rows("SELECT count(*) FROM reaction_work WHERE lease_expires_at > now()")[0][0]
        most["in_flight"] = max(most["in_flight"], int(in_flight))
        return handled_count() == count

    wait_for(done, timeout=timeout, what=what)
    return most
