"""The console's ``/metrics``: gauges computed from the database when Prometheus scrapes.

One statement reads every bookmark with its lag, status and stream work
(``subscribers.sql.SUBSCRIBER_STATE``), one more names the oldest transaction holding
the horizon. ``prometheus_client`` renders them. Who may read: see :func:`metrics_view`.

The names, types and labels are a contract (docs/operations.md, and
tests/contract/test_metrics_contract.py): change them only with both.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from django.db import InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from config.options import options
from eventstore.horizon import horizon_holders
from reactions_admin import errors
from reactions_admin.acts.tokens.handler import bearer_secret
from reactions_admin.doors.access import actor_for_token
from reactions_admin.guards import authorize
from subscribers import sql
from subscribers.heartbeat import live_workers
from subscribers.history import handled_types_json
from subscribers.models import Bookmark, Rebuild
from subscribers.registry import configured_registry

#: The permission that lets a user (by token or session) read /metrics: the same one that
#: shows the Bookmarks page, since the metrics say what that page says.
READ_PERMISSION = "subscribers.view_bookmark"
#: A transaction holding an xid counts as holding the horizon once open this long: the
#: short transactions of a busy system would otherwise flicker through the pid label.
HORIZON_MIN_SECONDS = 5.0
STATUSES = tuple(Bookmark.Status.values)


class ConsoleCollector(Collector):
    """Reads the database on every scrape and yields Eventdesk's gauges."""

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        registry = configured_registry()
        entries = list(registry) if registry is not None else []
        ordering = {entry.name: entry.ordering for entry in entries}
        with connection.cursor() as cursor:
            cursor.execute(
                sql.SUBSCRIBER_STATE,
                {"types": handled_types_json(entries), "names": None, "cap": sql.METRICS_LAG_CAP},
            )
            rows = cursor.fetchall()
        now = timezone.now()
        info = GaugeMetricFamily(
            "eventdesk_subscriber_info",
            "A subscriber's kind and ordering (always 1).",
            labels=["subscriber", "kind", "ordering"],
        )
        position = _per_subscriber(
            "eventdesk_subscriber_position",
            "The position of the event the subscriber's cursor stands on.",
        )
        lag_events = _per_subscriber(
            "eventdesk_subscriber_lag_events",
            "Committed events of the types it handles that it has not done yet"
            f" (at most {sql.METRICS_LAG_CAP} past its cursor, plus unfinished stream work).",
        )
        lag_capped = _per_subscriber(
            "eventdesk_subscriber_lag_capped",
            "1 when lag_events stopped at the cap: the lag is at least that.",
        )
        lag_seconds = _per_subscriber(
            "eventdesk_subscriber_lag_seconds",
            "Age of the oldest event it has not done (parked streams excluded); 0 when caught up.",
        )
        status = GaugeMetricFamily(
            "eventdesk_subscriber_status",
            "1 for the subscriber's current status, 0 for the others.",
            labels=["subscriber", "status"],
        )
        attempts = _per_subscriber(
            "eventdesk_subscriber_attempts",
            "Failed attempts on the event it is stuck on (0 when none).",
        )
        parked = _per_subscriber(
            "eventdesk_subscriber_parked_streams",
            "Streams parked (stream-ordered reactions; 0 otherwise).",
        )
        oldest_parked = _per_subscriber(
            "eventdesk_subscriber_oldest_parked_seconds",
            "How long the longest-parked stream has waited since it first parked (a failed"
            " retry does not restart it; 0 when none).",
        )
        intake_paused = _per_subscriber(
            "eventdesk_subscriber_intake_paused",
            "1 while a stream-ordered reaction takes in nothing (intake_limit reached).",
        )
        in_flight = _per_subscriber(
            "eventdesk_subscriber_claims_in_flight",
            "Stream-ordered work under a live lease, over all workers.",
        )
        for row in rows:
            (name, kind, state, tries, paused_at, _tx, pos, past, open_rows, oldest,
             parked_n, parked_at, flying) = row  # fmt: skip
            info.add_metric([name, kind, ordering.get(name, "global")], 1)
            position.add_metric([name], int(pos))
            lag_events.add_metric([name], min(int(past), sql.METRICS_LAG_CAP) + int(open_rows))
            lag_capped.add_metric([name], 1 if int(past) > sql.METRICS_LAG_CAP else 0)
            lag_seconds.add_metric([name], _age(now, oldest))
            for value in STATUSES:
                status.add_metric([name, value], 1 if state == value else 0)
            attempts.add_metric([name], int(tries))
            parked.add_metric([name], int(parked_n))
            oldest_parked.add_metric([name], _age(now, parked_at))
            intake_paused.add_metric([name], 0 if paused_at is None else 1)
            in_flight.add_metric([name], int(flying))
        yield from (info, position, lag_events, lag_capped, lag_seconds, status, attempts)
        yield from (parked, oldest_parked, intake_paused, in_flight)
        yield _live_workers([row[0] for row in rows])
        yield from _horizon()
        yield from _rebuilds(now)
        yield GaugeMetricFamily(
            "eventdesk_metrics_scrape_duration_seconds",
            "How long the database reads of this scrape took.",
            value=time.perf_counter() - started,
        )


def _live_workers(names: list[str]) -> Metric:
    """How many live workers (heartbeat within a few of their poll intervals) run each
    subscriber: 0 is a subscriber nothing runs, however the workers are scraped."""
    running: Counter[str] = Counter()
    for worker in live_workers():
        running.update(set(worker.subscribers))
    gauge = GaugeMetricFamily(
        "eventdesk_subscriber_live_workers",
        "Live run_subscribers processes (by their heartbeats) that run the subscriber.",
        labels=["subscriber"],
    )
    for name in names:
        gauge.add_metric([name], running[name])
    return gauge


def _horizon() -> Iterator[Metric]:
    holders = horizon_holders(min_age_seconds=HORIZON_MIN_SECONDS, limit=1)
    held = GaugeMetricFamily(
        "eventdesk_horizon_held_seconds",
        f"How long the oldest transaction holding an xid (open over {HORIZON_MIN_SECONDS:g}s)"
        " has held the horizon back; 0 when none.",
        value=holders[0].open_seconds if holders else 0.0,
    )
    holder = GaugeMetricFamily(
        "eventdesk_horizon_holder_info",
        "The backend holding the horizon (present only while one does; always 1).",
        labels=["pid", "user", "database", "application"],
    )
    for h in holders:
        holder.add_metric([str(h.pid), h.user, h.database, h.application], 1)
    yield held
    yield holder


#: A rebuild's phases while it has not ended (the label values of ``eventdesk_rebuild_phase``).
REBUILD_PHASES = tuple(str(phase) for phase in Rebuild.OPEN_PHASES)


def _rebuilds(now: Any) -> Iterator[Metric]:
    """Each open rebuild: events left, its phase, and how long since it last moved. They
    stay apart from the subscribers' gauges (a rebuild is not behind the way they are)."""
    remaining = _per_subscriber(
        "eventdesk_rebuild_events_remaining",
        "Events a projection's rebuild has still to replay (at its last count).",
    )
    phase = GaugeMetricFamily(
        "eventdesk_rebuild_phase",
        "1 for the phase an open rebuild is in, 0 for the others.",
        labels=["subscriber", "phase"],
    )
    still = _per_subscriber(
        "eventdesk_rebuild_seconds_since_progress",
        "Seconds since an open rebuild last recorded progress.",
    )
    for rebuild in Rebuild.objects.filter(phase__in=REBUILD_PHASES).order_by("projection_name"):
        name = rebuild.projection_name
        remaining.add_metric([name], max(0, rebuild.events_total - rebuild.events_done))
        for value in REBUILD_PHASES:
            phase.add_metric([name, value], 1.0 if rebuild.phase == value else 0.0)
        still.add_metric([name], _age(now, rebuild.updated_at))
    yield from (remaining, phase, still)


def _per_subscriber(name: str, documentation: str) -> GaugeMetricFamily:
    """A gauge with one label, the subscriber's name."""
    return GaugeMetricFamily(name, documentation, labels=["subscriber"])


def _age(now: Any, then: Any) -> float:
    return max(0.0, (now - then).total_seconds()) if then is not None else 0.0


#: The console's metrics registry: only Eventdesk's gauges (no process metrics: the
#: console may run in several server processes; each worker exports its own).
REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(ConsoleCollector())


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """``GET /metrics``: the gauges in the Prometheus text format.

    Who may read them: with ``EVENTDESK_METRICS_PUBLIC`` on, anyone who can reach the
    console; otherwise a Bearer API token (``manage.py create_api_token``) or a session,
    of a user holding ``subscribers.view_bookmark`` (the Bookmarks page's permission).
    401 without credentials or with an unknown/revoked token, 403 without the permission.
    """
    if not options().metrics_public:
        refusal = _refusal(request)
        if refusal is not None:
            return refusal
    try:
        body = generate_latest(REGISTRY)
    except (OperationalError, InterfaceError):
        return HttpResponse("database unavailable\n", status=503, content_type="text/plain")
    # The text format every Prometheus 2.x reads (Debian ships 2.42).
    return HttpResponse(body, content_type=CONTENT_TYPE_PLAIN_0_0_4)


def _refusal(request: HttpRequest) -> HttpResponse | None:
    """None when the caller may read; else the door's refusal, as text (Prometheus reads
    the status; a person reads the line). The token and the permission are checked by the
    doors' own functions, as for every other door."""
    header = request.headers.get("Authorization")
    try:
        actor = actor_for_token(bearer_secret(header)) if header else request.user
        authorize(actor, READ_PERMISSION)
    except errors.ReactionsError as exc:
        if exc.status == 401:
            return _unauthorized(exc.detail)
        return HttpResponse(exc.detail + "\n", status=exc.status, content_type="text/plain")
    return None


def _unauthorized(detail: str) -> HttpResponse:
    response = HttpResponse(detail + "\n", status=401, content_type="text/plain")
    response["WWW-Authenticate"] = 'Bearer realm="eventdesk-metrics"'
    return response
