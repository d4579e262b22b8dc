"""The console's read side for every subscriber: the facts the diagnosis needs, read in a
few queries, and one report per subscriber (what every reading door shows).

Reading needs the view permission (``reactions_admin.view_console``) or any permission
that implies looking (viewing bookmarks, dismissing, operating).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import BigIntegerField, F
from django.db.models.expressions import RawSQL
from django.utils import timezone

from config.options import options
from eventstore.horizon import horizon_holders
from eventstore.models import Event
from reactions_admin import errors
from reactions_admin.guards import Actor, authenticated, database_errors, require_durable_store
from reactions_admin.reads.diagnosis import (
    HORIZON_SECONDS,
    Counts,
    Diagnosis,
    HorizonFact,
    LeaseFact,
    SubscriberFacts,
    count,
    diagnose,
)
from reactions_admin.reads.rebuild_progress import open_rebuilds, progress_payload, progress_text
from subscribers import history, sql
from subscribers.heartbeat import WorkerInfo, workers
from subscribers.json_form import attributes, iso
from subscribers.models import Bookmark
from subscribers.rebuilds import RebuildProgress
from subscribers.registry import configured_registry

#: Reading the console needs one of these.
VIEW_PERMISSIONS = (
    "reactions_admin.view_console",
    "subscribers.view_bookmark",
    "reactions_admin.dismiss_event",
    "reactions_admin.operate_subscriber",
    "reactions_admin.rebuild_projection",
)


def rates(names: list[str]) -> dict[str, tuple[float | None, float | None]]:
    """Events per second and ETA (seconds) of each subscriber, from the lag history the
    worker samples (``subscribers.history``); (None, None) while there are too few samples."""
    found: dict[str, tuple[float | None, float | None]] = {}
    for name in names:
        estimate = history.rate_and_eta(name)
        found[name] = (estimate.events_per_second, estimate.eta_seconds)
    return found


#: Where the diagnosis finds rates (replaceable in one place).
rate_source: Callable[[list[str]], dict[str, tuple[float | None, float | None]]] = rates


@dataclass(frozen=True)
class SubscriberReport:
    """One subscriber as the console shows it: its bookmark, the facts, the diagnosis."""

    bookmark: Bookmark
    facts: SubscriberFacts
    diagnosis: Diagnosis
    #: A projection's rebuild in progress (phase, events done of total, rate, ETA).
    rebuild: RebuildProgress | None = None

    @property
    def rebuild_text(self) -> str:
        return progress_text(self.rebuild) if self.rebuild is not None else ""

    @property
    def name(self) -> str:
        return self.bookmark.subscriber_name

    def as_json(self) -> dict[str, Any]:
        """The JSON form of ``GET /agent/subscribers``, the MCP tool and ``--json``."""
        b = self.bookmark
        return {
            "name": b.subscriber_name,
            "kind": b.kind,
            "status": b.status,
            "cursor": {"transaction_id": b.last_transaction_id, "position": b.last_position},
            "lag": self.facts.lag,
            "lag_capped": self.facts.lag_capped,
            "attempts": b.attempts,
            "failing_event_id": str(b.failing_event_id) if b.failing_event_id else None,
            "last_error": b.last_error,
            "failed_at": iso(b.failed_at),
            "next_retry_at": iso(b.next_retry_at),
            "lease_owner": b.lease_owner,
            "paused": (
                {"by": b.paused_by, "at": iso(b.paused_at), "reason": b.pause_reason}
                if b.status == Bookmark.Status.PAUSED
                else None
            ),
            "ordering": "stream" if self.facts.stream_ordered else "global",
            "parked_streams": self.facts.parked_streams,
            "live_workers": list(self.facts.live_workers),
            "diagnosis": self.diagnosis.as_json(),
            "rebuild": progress_payload(self.rebuild) if self.rebuild is not None else None,
        }


@dataclass(frozen=True)
class Overview:
    """Every subscriber's report, the counts, the workers: one snapshot for the home page."""

    reports: list[SubscriberReport]
    counts: Counts
    workers: list[WorkerInfo]

    def as_json(self) -> dict[str, Any]:
        return {
            "counts": self.counts.as_json(),
            "subscribers": [report.as_json() for report in self.reports],
            "workers": [worker.as_json() for worker in self.workers],
            "generated_at": timezone.now().isoformat(),
        }


def authorize_view(actor: Actor) -> None:
    """401 for an anonymous actor, 403 for one with no reading permission."""
    authenticated(actor)
    if not any(actor.has_perm(permission) for permission in VIEW_PERMISSIONS):
        raise errors.PermissionDenied(
            "You lack the permission 'reactions_admin.view_console' (or one that implies it)."
        )


def overview(actor: Actor) -> Overview:
    """Every subscriber's report (by name), the counts and the workers."""
    authorize_view(actor)
    return read_as_shell()


def read_as_shell() -> Overview:
    """The overview for the shell's account (``manage.py subscribers`` without ``--as``):
    whoever can run the command can read the database anyway."""
    require_durable_store()
    with database_errors():
        reports, found = _reports(Bookmark.objects.all())
        return Overview(reports, count(r.diagnosis for r in reports), found)


def list_workers(actor: Actor) -> list[WorkerInfo]:
    """The workers seen in the last day (live ones first)."""
    authorize_view(actor)
    require_durable_store()
    with database_errors():
        return workers()


def subscriber_report(name: str, actor: Actor) -> SubscriberReport:
    """One subscriber's report (404 ``subscriber_not_found``)."""
    authorize_view(actor)
    require_durable_store()
    with database_errors():
        reports, _ = _reports(Bookmark.objects.filter(subscriber_name=name))
    if not reports:
        raise errors.SubscriberNotFound(f"No subscriber named {name!r}.")
    return reports[0]


def _handled_types() -> str:
    """Each configured subscriber with event_types -> those types, as JSON (for ``sql.LAG``)."""
    registry = configured_registry()
    if registry is None:
        return "{}"
    return json.dumps({e.name: list(e.event_types) for e in registry if e.event_types is not None})


def bookmarks_with_lag(bookmarks: Any) -> Any:
    """``bookmarks`` annotated with ``behind`` (a capped count of the wanted events past
    each one under the horizon: one correlated count per row, in the same query),
    ``open_work`` and their sum ``lag_total``."""
    types = _handled_types()
    # A stream-ordered reaction's lag also counts its unfinished rows of streams that are
    # not parked (taken in, not handled); parked streams are a cause of their own.
    return bookmarks.annotate(
        behind=RawSQL(sql.LAG, (types, types), output_field=BigIntegerField()),
        open_work=RawSQL(sql.OPEN_WORK_OF_BOOKMARK, (), output_field=BigIntegerField()),
    ).annotate(lag_total=F("behind") + F("open_work"))


def _reports(bookmarks: Any) -> tuple[list[SubscriberReport], list[WorkerInfo]]:
    rows = list(bookmarks_with_lag(bookmarks).order_by("subscriber_name"))
    now = timezone.now()
    found = workers()
    by_id = {worker.worker_id: worker for worker in found}
    running: dict[str, list[str]] = {}
    polling: dict[str, list[float]] = {}
    for worker in found:
        if worker.live:
            for name in worker.subscribers:
                running.setdefault(name, []).append(worker.worker_id)
                if worker.wakeups_working is False:
                    polling.setdefault(name, []).append(worker.interval_seconds)
    work = _work_facts()
    horizon = _horizon()
    failing = _failing_types([row.failing_event_id for row in rows if row.failing_event_id])
    registry = configured_registry()
    rate_of = rate_source([row.subscriber_name for row in rows])
    max_attempts = options().max_attempts
    rebuilding = open_rebuilds()
    reports = []
    for row in rows:
        entry = registry.get(row.subscriber_name) if registry else None
        parked, oldest, retrying, next_retry, owners = work.get(
            row.subscriber_name, (0, None, 0, None, [])
        )
        lease_owners = set(owners)
        if row.lease_owner and row.lease_expires_at and row.lease_expires_at > now:
            lease_owners.add(row.lease_owner.split("#", 1)[0])
        behind = int(getattr(row, "behind", 0) or 0)
        open_work = int(getattr(row, "open_work", 0) or 0)
        facts = SubscriberFacts(
            name=row.subscriber_name,
            kind=row.kind,
            status=row.status,
            now=now,
            lag=min(behind, sql.LAG_CAP) + open_work,
            lag_capped=behind > sql.LAG_CAP,
            attempts=row.attempts,
            max_attempts=max_attempts,
            failing_event_id=row.failing_event_id,
            failing_event_type=failing.get(row.failing_event_id, "")
            if row.failing_event_id
            else "",
            **attributes(row, "last_error", "failed_at", "next_retry_at"),
            **attributes(row, "paused_at", "paused_by", "pause_reason"),
            stream_ordered=bool(entry and entry.stream_ordered) or row.subscriber_name in work,
            parked_streams=parked,
            oldest_parked=oldest,
            intake_paused_at=row.intake_paused_at,
            retrying_rows=retrying,
            next_row_retry_at=next_retry,
            live_workers=tuple(running.get(row.subscriber_name, ())),
            polling_only=tuple(polling.get(row.subscriber_name, ())),
            leases=tuple(_lease(owner, by_id) for owner in sorted(lease_owners)),
            horizon=horizon,
            rate=rate_of.get(row.subscriber_name, (None, None))[0],
            eta_seconds=rate_of.get(row.subscriber_name, (None, None))[1],
        )
        rebuild = rebuilding.get(row.subscriber_name)
        reports.append(SubscriberReport(row, facts, diagnose(facts), rebuild))
    return reports, found


def _lease(owner: str, by_id: dict[str, WorkerInfo]) -> LeaseFact:
    worker = by_id.get(owner)
    if worker is None:
        return LeaseFact(owner, owner_live=False, silent_seconds=None)
    return LeaseFact(owner, owner_live=worker.live, silent_seconds=worker.silent_seconds)


WorkFacts = tuple[int, Any, int, Any, list[str]]


def _work_facts() -> dict[str, WorkFacts]:
    with connection.cursor() as cursor:
        cursor.execute(sql.WORK_FACTS)
        return {
            row[0]: (int(row[1]), row[2], int(row[3]), row[4], list(row[5]))
            for row in cursor.fetchall()
        }


def _horizon() -> HorizonFact | None:
    holders = horizon_holders(min_age_seconds=HORIZON_SECONDS, limit=1)
    if not holders:
        return None
    with connection.cursor() as cursor:
        cursor.execute(sql.HIDDEN_EVENTS)
        hidden = int(cursor.fetchone()[0])
    holder = holders[0]
    who = f"{holder.user}@{holder.database}" + (
        f", {holder.application}" if holder.application else ""
    )
    return HorizonFact(holder.pid, holder.open_seconds, who, hidden)


def _failing_types(ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    return dict(Event.objects.filter(event_id__in=ids).values_list("event_id", "event_type"))
