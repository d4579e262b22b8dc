"""The lag trend: samples of each subscriber's cursor and lag, and the rate and ETA they give.

The worker calls :func:`sample` every ``history_sample_seconds`` and :func:`prune` now
and then; the console reads :func:`samples` (the chart) and :func:`rate_and_eta` (the
throughput, and how long until a subscriber that is behind catches up).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from config.options import options
from subscribers import sql
from subscribers.registry import Registered

#: The rate and the ETA are read over the samples of this last stretch of time.
RATE_WINDOW_SECONDS = 60.0


@dataclass(frozen=True)
class Sample:
    """One subscriber at one moment: where it stood, the head, and its lag."""

    at: datetime
    position: int
    head_position: int
    lag_events: int
    lag_capped: bool


@dataclass(frozen=True)
class RateAndEta:
    """How fast a subscriber goes, and when it will have caught up.

    ``events_per_second`` is how many positions of the event store it moved past per
    second over the window (events it handles and events it passes over alike); None
    without two samples. ``eta_seconds`` is set only while it is behind and gaining:
    the lag (in events, or in positions once the count is capped) divided by the speed
    at which it shrinks. ``behind`` with no ETA means the lag is not shrinking.
    """

    name: str
    events_per_second: float | None
    eta_seconds: float | None
    behind: bool
    lag_events: int | None
    lag_capped: bool
    samples: int


def handled_types_json(entries: Iterable[Registered]) -> str:
    """Each subscriber with ``event_types`` -> those types, as the JSON the SQL reads."""
    return json.dumps({e.name: list(e.event_types) for e in entries if e.event_types is not None})


def sample(entries: Iterable[Registered]) -> int:
    """Record the current bucket's sample of each subscriber in ``entries``; return how
    many rows this call wrote (0 when another worker sampled the bucket first)."""
    entries = list(entries)
    if not entries:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SAMPLE_SUBSCRIBERS,
            {
                "types": handled_types_json(entries),
                "names": [entry.name for entry in entries],
                "cap": sql.METRICS_LAG_CAP,
                "every": options().history_sample_seconds,
            },
        )
        return int(cursor.rowcount)


def prune() -> int:
    """Delete the samples older than ``history_retention_seconds``; return how many."""
    with connection.cursor() as cursor:
        cursor.execute(sql.PRUNE_SAMPLES, {"keep": options().history_retention_seconds})
        return int(cursor.rowcount)


def samples(name: str, since: datetime) -> list[Sample]:
    """The samples of subscriber ``name`` taken at or after ``since``, oldest first."""
    with connection.cursor() as cursor:
        cursor.execute(sql.SAMPLES_SINCE, {"name": name, "since": since})
        return [Sample(r[0], int(r[1]), int(r[2]), int(r[3]), bool(r[4])) for r in cursor]


def rate_and_eta(name: str, window_seconds: float = RATE_WINDOW_SECONDS) -> RateAndEta:
    """The throughput of subscriber ``name`` and, while it is behind, its ETA, from the
    samples of the last ``window_seconds`` (see :class:`RateAndEta`)."""
    taken = samples(name, timezone.now() - timedelta(seconds=window_seconds))
    return estimate(name, taken)


def estimate(name: str, taken: list[Sample]) -> RateAndEta:
    """:class:`RateAndEta` from samples, oldest first (pure: no database)."""
    if not taken:
        return RateAndEta(name, None, None, False, None, False, 0)
    last = taken[-1]
    behind = last.lag_events > 0
    if len(taken) < 2:
        return RateAndEta(name, None, None, behind, last.lag_events, last.lag_capped, 1)
    first = taken[0]
    seconds = (last.at - first.at).total_seconds()
    if seconds <= 0:
        return RateAndEta(name, None, None, behind, last.lag_events, last.lag_capped, len(taken))
    # Positions move in (transaction_id, position) order, not strictly up: never negative.
    rate = max(0.0, (last.position - first.position) / seconds)
    eta = None
    if behind:
        if first.lag_capped or last.lag_capped:
            # A capped count cannot shrink: measure the remaining distance in positions.
            before = first.head_position - first.position
            now = last.head_position - last.position
        else:
            before, now = first.lag_events, last.lag_events
        gaining = (before - now) / seconds
        if gaining > 0:
            eta = max(0, now) / gaining
    return RateAndEta(name, rate, eta, behind, last.lag_events, last.lag_capped, len(taken))
