"""What the start form shows before an operator confirms a rebuild."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connection

import subscribers.rebuilds.sql as sql
from eventstore.types import START, Cursor
from subscribers.models import Rebuild
from subscribers.pace import eta_seconds
from subscribers.rebuilds.declared import declared_tables
from subscribers.registry import SubscriberRegistry, configured_registry


@dataclass(frozen=True)
class RebuildEstimate:
    """Events to replay, the rate measured so far, the duration, the extra disk."""

    projection: str
    events: int
    #: Events per second of this projection's past rebuilds (None: never measured).
    rate: float | None
    #: ``events / rate`` (None without a rate).
    seconds: float | None
    #: The live tables' size with their indexes: about what the new tables take.
    extra_bytes: int
    tables: list[str]

    def as_payload(self) -> dict[str, Any]:
        return {
            "projection": self.projection,
            "events": self.events,
            "rate_events_per_second": self.rate,
            "estimated_seconds": self.seconds,
            "extra_bytes": self.extra_bytes,
            "tables": self.tables,
        }


def events_to_replay(
    name: str, registry: SubscriberRegistry | None = None, after: Cursor = START
) -> int:
    """The events of ``name``'s types after ``after`` up to where the live projection
    stands: what a rebuild from ``after`` replays."""
    registry = registry if registry is not None else configured_registry()
    entry = registry.get(name) if registry is not None else None
    with connection.cursor() as cursor:
        cursor.execute(sql.LIVE_CURSOR, {"name": name})
        row = cursor.fetchone()
        upto = (int(row[0]), int(row[1])) if row else START
        params: dict[str, Any] = {
            "tx": after.transaction_id, "pos": after.position, "to_tx": upto[0], "to_pos": upto[1],
        }  # fmt: skip
        query = sql.COUNT_UPTO
        if entry is not None and entry.event_types is not None:
            query, params["types"] = sql.COUNT_UPTO_OF_TYPES, list(entry.event_types)
        cursor.execute(query, params)
        return int(cursor.fetchone()[0])


def estimate_rebuild(name: str, registry: SubscriberRegistry | None = None) -> RebuildEstimate:
    """The estimate for a rebuild of ``name`` now (a projection that may not be rebuildable:
    the form shows the figures and the refusal apart)."""
    registry = registry if registry is not None else configured_registry()
    entry = registry.get(name) if registry is not None else None
    tables = [t.table for t in declared_tables(entry)] if entry is not None else []
    events = events_to_replay(name, registry)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(pg_total_relation_size(to_regclass(quote_ident(t)))), 0)"
            " FROM unnest(%(tables)s::text[]) AS t",
            {"tables": tables},
        )
        size = int(cursor.fetchone()[0])
    past = (
        Rebuild.objects.filter(projection_name=name, rate__gt=0)
        .order_by("-created_at")
        .values_list("rate", flat=True)
        .first()
    )
    rate = float(past) if past else None
    return RebuildEstimate(
        projection=name,
        events=events,
        rate=rate,
        seconds=eta_seconds(events, rate),
        extra_bytes=size,
        tables=tables,
    )
