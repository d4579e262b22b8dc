"""The worker's own metrics (``run_subscribers --metrics-port``), with ``prometheus_client``.

Counters and histograms labelled by subscriber, recorded from the ``Outcome`` of each
step and from timers around ``handle``/``apply``: the loops themselves are unchanged
but for one call per step. The console's ``/metrics`` (reactions_admin/reads/metrics.py)
carries the gauges computed from the database; these are what only the process knows.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from threading import Thread
from typing import Any
from wsgiref.simple_server import WSGIServer

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from config.options import options
from subscribers.outcome import Outcome
from subscribers.registry import Registered, SubscriberRegistry

#: ``handle`` of a reaction: an LLM round-trip, a mail, a webhook (seconds to minutes).
HANDLE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60, 120, 300)
#: ``apply`` of a projection: a few statements (sub-millisecond to a second).
APPLY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
#: One step of a loop: a projection batch, a reaction step.
BATCH_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class WorkerMetrics:
    """The metrics of one worker process, in a registry of their own.

    Names (``_total`` is added to counters on exposition):

    * ``eventdesk_worker_events_handled_total{subscriber}``: events applied or handled
      and committed;
    * ``eventdesk_worker_failures_total{subscriber}``: ``handle``/``apply`` calls that raised;
    * ``eventdesk_worker_retries_total{subscriber}``: failed attempts scheduled for a retry;
    * ``eventdesk_worker_wedges_total{subscriber}``: failures that wedged the bookmark
      (or parked a stream);
    * ``eventdesk_worker_discarded_results_total{subscriber}``: results thrown away
      because the claim was lost (lease expired and taken over, or an operator acted);
    * ``eventdesk_worker_lease_renewals_total{subscriber}``: leases renewed while
      ``handle`` ran;
    * ``eventdesk_worker_handle_duration_seconds{subscriber}`` (reactions) and
      ``eventdesk_worker_apply_duration_seconds{subscriber}`` (projections, one
      observation per ``apply`` or ``apply_batch`` call), histograms;
    * ``eventdesk_worker_batch_duration_seconds{subscriber}``: one step that did work;
    * ``eventdesk_worker_reactions_in_flight{subscriber}``: ``handle`` calls running now;
    * ``eventdesk_worker_subscriber_running{subscriber}``: 1 for each subscriber it runs
      (with the console's gauges: a subscriber no live worker runs).
    * ``eventdesk_worker_wakeups_working{listen_connection}``: 1 when its wake-ups
      (LISTEN/NOTIFY) arrive, 0 when its own check NOTIFY did not reach it (it polls).
    """

    def __init__(self) -> None:
        # The console's /metrics and the tests' processes must not see `_created` series.
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["subscriber"]
        r = self.registry
        self.handled = Counter(
            "eventdesk_worker_events_handled", "Events applied or handled.", labels, registry=r
        )
        self.failures = Counter(
            "eventdesk_worker_failures", "handle/apply calls that raised.", labels, registry=r
        )
        self.retries = Counter(
            "eventdesk_worker_retries", "Failed attempts scheduled for a retry.", labels, registry=r
        )
        self.wedges = Counter(
            "eventdesk_worker_wedges",
            "Failures that wedged a bookmark or parked a stream.",
            labels,
            registry=r,
        )
        self.discarded = Counter(
            "eventdesk_worker_discarded_results",
            "Results discarded because the claim was lost.",
            labels,
            registry=r,
        )
        self.renewals = Counter(
            "eventdesk_worker_lease_renewals",
            "Leases renewed while handle ran.",
            labels,
            registry=r,
        )
        self.handle_seconds = Histogram(
            "eventdesk_worker_handle_duration_seconds",
            "Duration of a reaction's handle call.",
            labels,
            buckets=HANDLE_BUCKETS,
            registry=r,
        )
        self.apply_seconds = Histogram(
            "eventdesk_worker_apply_duration_seconds",
            "Duration of a projection's apply (or apply_batch, apply_rows) call.",
            labels,
            buckets=APPLY_BUCKETS,
            registry=r,
        )
        self.batch_seconds = Histogram(
            "eventdesk_worker_batch_duration_seconds",
            "Duration of one step of a loop that did work.",
            labels,
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.running = Gauge(
            "eventdesk_worker_subscriber_running",
            "1 for each subscriber this worker process runs.",
            labels,
            registry=r,
        )
        self.in_flight = Gauge(
            "eventdesk_worker_reactions_in_flight",
            "handle calls running now.",
            labels,
            registry=r,
        )
        # Labelled by the setting the listener connects with, so that the series is
        # absent (not a false 0) until the first check has concluded.
        self.wakeups_working = Gauge(
            "eventdesk_worker_wakeups_working",
            "1 when the worker's own check NOTIFY reached its listener, 0 when it did not "
            "(it only polls); absent until the first check concluded.",
            ["listen_connection"],
            registry=r,
        )

    def instrument(self, registry: SubscriberRegistry) -> SubscriberRegistry:
        """The same subscribers, each ``handle``/``apply``/``apply_batch`` timed and
        counted (failures, calls in flight)."""
        for entry in registry:
            self.running.labels(entry.name).set(1)
        return SubscriberRegistry(
            dataclasses.replace(entry, subscriber=_Timed(entry, self)) for entry in registry
        )

    def record(self, outcome: Outcome, seconds: float) -> None:
        """Count what one step did (``outcome``), and how long it took."""
        name = outcome.name
        if outcome.processed:
            self.handled.labels(name).inc(outcome.processed)
        decision = outcome.decision
        if decision is not None:
            (self.wedges if decision.wedged else self.retries).labels(name).inc()
        discarded = outcome.lost + (1 if outcome.discarded else 0)
        if discarded:
            self.discarded.labels(name).inc(discarded)
        if outcome.renewed:
            self.renewals.labels(name).inc(outcome.renewed)
        if outcome.claimed or outcome.processed or outcome.settled:
            self.batch_seconds.labels(name).observe(seconds)

    def wakeups_changed(self, working: bool) -> None:
        """Set ``eventdesk_worker_wakeups_working`` (the listener's check concluded)."""
        direct = options().listen_database_url
        setting = "EVENTDESK_LISTEN_DATABASE_URL" if direct else "DATABASE_URL"
        self.wakeups_working.labels(setting).set(1 if working else 0)

    def lease_renewed(self, name: str) -> None:
        """Count one lease of subscriber ``name`` renewed (a global-order reaction's)."""
        self.renewals.labels(name).inc()

    def serve(self, port: int, host: str = "127.0.0.1") -> tuple[WSGIServer, Thread]:
        """Serve these metrics over HTTP at ``http://host:port/metrics`` (a daemon thread)."""
        return prometheus_client.start_http_server(port, addr=host, registry=self.registry)

    def exposition(self) -> bytes:
        """The metrics in the Prometheus text format."""
        return prometheus_client.generate_latest(self.registry)


class _Timed:
    """A subscriber whose ``handle``/``apply``/``apply_batch`` are timed; every other
    attribute is the subscriber's own."""

    def __init__(self, entry: Registered, metrics: WorkerMetrics) -> None:
        self._subscriber = entry.subscriber
        name = entry.name
        failures = metrics.failures.labels(name)
        if entry.kind == "reaction":
            seconds = metrics.handle_seconds.labels(name)
            running: Any = metrics.in_flight.labels(name)
            running.set(0)
        else:
            seconds, running = metrics.apply_seconds.labels(name), None
        for method in ("handle", "apply", "apply_batch", "apply_rows"):
            found = getattr(entry.subscriber, method, None)
            if callable(found):
                setattr(self, method, _timer(found, seconds, failures, running))

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._subscriber, attribute)


def _timer(
    call: Callable[..., Any], seconds: Any, failures: Any, running: Any
) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        if running is not None:
            running.inc()
        started = time.perf_counter()
        try:
            return call(*args, **kwargs)
        except Exception:
            failures.inc()
            raise
        finally:
            seconds.observe(time.perf_counter() - started)
            if running is not None:
                running.dec()

    return timed
