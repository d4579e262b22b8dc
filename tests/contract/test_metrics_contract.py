"""The metrics contract: names, types and labels, read back by prometheus_client's own
parser from the console's ``/metrics`` (through Django's URL resolver) and from a worker's
exposition; who may read ``/metrics``; what the values say about the database."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest
from django.db import connection
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families

from reactions_admin.acts.tokens.handler import issue_token, revoke
from reactions_admin.models import ApiToken
from subscribers import sql
from subscribers.heartbeat import Heartbeat
from subscribers.metrics import WorkerMetrics
from subscribers.models import Bookmark
from subscribers.registry import build_registry
from subscribers.worker import Worker
from tests.factories import append, operator, wedged_reaction
from tests.support import ROOT, raw_connection, wait_for

#: The console's metrics: name -> (type, labels). Documented in docs/operations.md.
CONSOLE = {
    "eventdesk_subscriber_info": ("gauge", {"subscriber", "kind", "ordering"}),
    "eventdesk_subscriber_position": ("gauge", {"subscriber"}),
    "eventdesk_subscriber_lag_events": ("gauge", {"subscriber"}),
    "eventdesk_subscriber_lag_capped": ("gauge", {"subscriber"}),
    "eventdesk_subscriber_lag_seconds": ("gauge", {"subscriber"}),
    "eventdesk_subscriber_status": ("gauge", {"subscriber", "status"}),
    "eventdesk_subscriber_attempts": ("gauge", {"subscriber"}),
    "eventdesk_subscriber_parked_streams": ("gauge", {"subscriber"}),
    "eventdesk_subscriber_oldest_parked_seconds": ("gauge", {"subscriber"}),
    "eventdesk_subscriber_intake_paused": ("gauge", {"subscriber"}),
    "eventdesk_subscriber_claims_in_flight": ("gauge", {"subscriber"}),
    "eventdesk_subscriber_live_workers": ("gauge", {"subscriber"}),
    "eventdesk_horizon_held_seconds": ("gauge", set()),
    "eventdesk_horizon_holder_info": ("gauge", {"pid", "user", "database", "application"}),
    "eventdesk_metrics_scrape_duration_seconds": ("gauge", set()),
    "eventdesk_rebuild_events_remaining": ("gauge", {"subscriber"}),
    "eventdesk_rebuild_phase": ("gauge", {"subscriber", "phase"}),
    "eventdesk_rebuild_seconds_since_progress": ("gauge", {"subscriber"}),
}
#: A worker's metrics (family names: counters lose their ``_total`` in the parser).
WORKER = {
    "eventdesk_worker_events_handled": ("counter", {"subscriber"}),
    "eventdesk_worker_failures": ("counter", {"subscriber"}),
    "eventdesk_worker_retries": ("counter", {"subscriber"}),
    "eventdesk_worker_wedges": ("counter", {"subscriber"}),
    "eventdesk_worker_discarded_results": ("counter", {"subscriber"}),
    "eventdesk_worker_lease_renewals": ("counter", {"subscriber"}),
    "eventdesk_worker_handle_duration_seconds": ("histogram", {"subscriber"}),
    "eventdesk_worker_apply_duration_seconds": ("histogram", {"subscriber"}),
    "eventdesk_worker_batch_duration_seconds": ("histogram", {"subscriber"}),
    "eventdesk_worker_reactions_in_flight": ("gauge", {"subscriber"}),
    "eventdesk_worker_subscriber_running": ("gauge", {"subscriber"}),
    # No sample until the listener's first check concluded (run_once never listens).
    "eventdesk_worker_wakeups_working": ("gauge", {"listen_connection"}),
}
SUBSCRIBERS = ["tests.subscribers.TypedProjection", "tests.subscribers.EchoReaction"]
OPERATIONS = (ROOT / "docs" / "operations.md").read_text()


def _families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def _value(families: dict[str, Any], name: str, **labels: str) -> float:
    for family in families.values():
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    raise AssertionError(f"no sample {name}{labels}")


def _scrape(client: Client, headers: dict[str, str] | None = None) -> str:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return response.content.decode()


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.mark.django_db
@override_settings(EVENTDESK={"subscribers": SUBSCRIBERS})
def test_console_metrics_names_types_and_labels_are_the_documented_ones() -> None:
    Bookmark.objects.create(subscriber_name="test.typed", kind="projection")
    Bookmark.objects.create(subscriber_name="test.echo", kind="reaction")
    families = _families(_scrape(Client(), _bearer(issue_token(operator("robot")).secret)))
    assert set(families) == set(CONSOLE)
    for name, (kind, labels) in CONSOLE.items():
        family = families[name]
        assert family.type == kind, name
        assert f"`{name}" in OPERATIONS, f"{name} is not documented in docs/operations.md"
        for sample in family.samples:
            assert set(sample.labels) == labels, (name, sample.labels)
    assert {s.labels["status"] for s in families["eventdesk_subscriber_status"].samples} == {
        "active", "retrying", "wedged", "paused"
    }  # fmt: skip


@pytest.mark.django_db
@override_settings(EVENTDESK={"subscribers": SUBSCRIBERS})
def test_lag_counts_only_handled_types_and_status_shows_the_wedge() -> None:
    events = append("orders-1", "Wanted", "Noise", "Wanted", "Noise", "Ping", "Ping")
    Bookmark.objects.create(subscriber_name="test.typed", kind="projection")
    wedged_reaction("test.echo", events[3], events[4])
    families = _families(_scrape(Client(), _bearer(issue_token(operator("robot")).secret)))
    assert _value(families, "eventdesk_subscriber_lag_events", subscriber="test.typed") == 2
    assert _value(families, "eventdesk_subscriber_lag_events", subscriber="test.echo") == 2
    assert _value(families, "eventdesk_subscriber_lag_capped", subscriber="test.typed") == 0
    assert _value(families, "eventdesk_subscriber_lag_seconds", subscriber="test.echo") >= 0
    for status in ("active", "retrying", "wedged", "paused"):
        expected = 1 if status == "wedged" else 0
        assert _value(
            families, "eventdesk_subscriber_status", subscriber="test.echo", status=status
        ) == expected  # fmt: skip
    assert _value(families, "eventdesk_subscriber_attempts", subscriber="test.echo") == 5
    assert _value(families, "eventdesk_subscriber_position", subscriber="test.echo") == (
        events[3].position
    )
    assert _value(
        families, "eventdesk_subscriber_info", subscriber="test.echo", kind="reaction"
    ) == 1  # fmt: skip


@pytest.mark.django_db
@override_settings(EVENTDESK={"subscribers": SUBSCRIBERS})
def test_live_workers_count_the_heartbeats_of_workers_that_run_each_subscriber() -> None:
    Bookmark.objects.create(subscriber_name="test.typed", kind="projection")
    Bookmark.objects.create(subscriber_name="test.echo", kind="reaction")
    headers = _bearer(issue_token(operator("robot")).secret)
    stop = threading.Event()
    both = Heartbeat("w-both", ["test.typed", "test.echo"], list, stop, interval=5)
    typed = Heartbeat("w-typed", ["test.typed"], list, stop, interval=5)
    both.beat()
    typed.beat()
    families = _families(_scrape(Client(), headers))
    assert _value(families, "eventdesk_subscriber_live_workers", subscriber="test.typed") == 2
    assert _value(families, "eventdesk_subscriber_live_workers", subscriber="test.echo") == 1
    both.say_stopped()
    families = _families(_scrape(Client(), headers))
    assert _value(families, "eventdesk_subscriber_live_workers", subscriber="test.typed") == 1
    assert _value(families, "eventdesk_subscriber_live_workers", subscriber="test.echo") == 0


@pytest.mark.django_db
@override_settings(EVENTDESK={"subscribers": SUBSCRIBERS})
def test_caught_up_means_no_lag_in_events_or_seconds() -> None:
    events = append("orders-1", "Wanted", "Noise")
    Bookmark.objects.create(
        subscriber_name="test.typed",
        kind="projection",
        last_transaction_id=events[-1].transaction_id,
        last_position=events[-1].position,
    )
    families = _families(_scrape(Client(), _bearer(issue_token(operator("robot")).secret)))
    assert _value(families, "eventdesk_subscriber_lag_events", subscriber="test.typed") == 0
    assert _value(families, "eventdesk_subscriber_lag_seconds", subscriber="test.typed") == 0


@pytest.mark.django_db
def test_lag_past_the_cap_says_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sql, "METRICS_LAG_CAP", 3)
    append("orders-1", "A", "B", "C", "D", "E")
    Bookmark.objects.create(subscriber_name="far.behind", kind="projection")
    families = _families(_scrape(Client(), _bearer(issue_token(operator("robot")).secret)))
    assert _value(families, "eventdesk_subscriber_lag_events", subscriber="far.behind") == 3
    assert _value(families, "eventdesk_subscriber_lag_capped", subscriber="far.behind") == 1


@pytest.mark.django_db
def test_parked_streams_their_age_and_paused_intake() -> None:
    secret = issue_token(operator("robot")).secret  # audited: an event, before the jobs
    events = append("mail-1", "Job", "Job")
    Bookmark.objects.create(
        subscriber_name="test.mailer",
        kind="reaction",
        last_transaction_id=events[-1].transaction_id,
        last_position=events[-1].position,
        intake_paused_at="2026-01-01T00:00:00Z",
    )
    with connection.cursor() as cursor:
        for index, event in enumerate(events):
            cursor.execute(
                "INSERT INTO reaction_work (subscriber_name, event_id, transaction_id, position,"
                " stream_id, event_type, attempts, lease_token, last_error, last_traceback,"
                " parked_at) VALUES ('test.mailer', %s, %s, %s, 'mail-1', 'Job', 5, '', 'x', '',"
                " CASE WHEN %s THEN now() - interval '90 seconds' END)",
                [event.event_id, event.transaction_id, event.position, index == 0],
            )
    families = _families(_scrape(Client(), _bearer(secret)))
    assert _value(families, "eventdesk_subscriber_parked_streams", subscriber="test.mailer") == 1
    parked_for = _value(
        families, "eventdesk_subscriber_oldest_parked_seconds", subscriber="test.mailer"
    )
    assert parked_for >= 90
    assert _value(families, "eventdesk_subscriber_intake_paused", subscriber="test.mailer") == 1
    # Both rows belong to the parked stream: neither counts as lag.
    assert _value(families, "eventdesk_subscriber_lag_events", subscriber="test.mailer") == 0
    assert _value(families, "eventdesk_subscriber_lag_seconds", subscriber="test.mailer") == 0


@pytest.mark.django_db(transaction=True)
def test_the_horizon_holder_is_named_with_its_pid() -> None:
    secret = issue_token(operator("robot")).secret
    holder = raw_connection(autocommit=False)
    try:
        pid = holder.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
        holder.execute("SELECT pg_current_xact_id()")

        def held() -> dict[str, Any] | None:
            families = _families(_scrape(Client(), _bearer(secret)))
            held_for = _value(families, "eventdesk_horizon_held_seconds")
            return families if held_for >= 5 else None

        families = wait_for(held, timeout=30, what="the horizon reported held")
        holders = families["eventdesk_horizon_holder_info"].samples
        assert [s.labels["pid"] for s in holders] == [str(pid)]
    finally:
        holder.rollback()
        holder.close()
    families = _families(_scrape(Client(), _bearer(secret)))
    assert families["eventdesk_horizon_holder_info"].samples == []


@pytest.mark.django_db
def test_who_may_read_metrics() -> None:
    client = Client()
    anonymous = client.get("/metrics")
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", headers=_bearer("edk_not-a-token")).status_code == 401
    outsider = operator("outsider", permitted=False)
    outsider.user_permissions.clear()
    assert client.get("/metrics", headers=_bearer(issue_token(outsider).secret)).status_code == 403
    revoked = issue_token(operator("robot"))
    assert client.get("/metrics", headers=_bearer(revoked.secret)).status_code == 200
    revoke(ApiToken.objects.filter(pk=revoked.token.pk))
    assert client.get("/metrics", headers=_bearer(revoked.secret)).status_code == 401
    # A logged-in user who may view bookmarks reads them with the session.
    client.force_login(operator("person"))
    assert client.get("/metrics").status_code == 200
    assert client.post("/metrics").status_code == 405


@pytest.mark.django_db
def test_metrics_public_lets_anyone_read(settings: Any) -> None:
    settings.EVENTDESK = {"metrics_public": True}
    assert Client().get("/metrics").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_worker_metrics_names_types_labels_and_counts(applied_table: None) -> None:
    append("orders-1", "Wanted", "Noise", "Wanted", "Ping")
    append("orders-2", "Ping", poison=True)
    metrics = WorkerMetrics()
    registry = build_registry(
        ["tests.subscribers.TypedProjection", "tests.subscribers.EchoReaction"]
    )
    worker = Worker(registry, metrics=metrics)
    wait_for(lambda: worker.run_once() == 0 and _handled(metrics) >= 3, what="the events done")
    text = metrics.exposition().decode()
    families = _families(text)
    assert set(families) == set(WORKER)
    for name, (kind, labels) in WORKER.items():
        assert families[name].type == kind, name
        exposed = name + ("_total" if kind == "counter" else "")
        assert f"`{exposed}" in OPERATIONS, f"{exposed} is not documented in docs/operations.md"
        for sample in families[name].samples:
            assert set(sample.labels) - {"le"} == labels, (name, sample.labels)
    assert not re.search(r"_created", text)
    count = _value(families, "eventdesk_worker_events_handled_total", subscriber="test.typed")
    assert count == 2
    assert _value(families, "eventdesk_worker_events_handled_total", subscriber="test.echo") == 1
    assert _value(families, "eventdesk_worker_failures_total", subscriber="test.echo") == 1
    assert _value(families, "eventdesk_worker_retries_total", subscriber="test.echo") == 1
    assert _value(
        families, "eventdesk_worker_handle_duration_seconds_count", subscriber="test.echo"
    ) == 2  # fmt: skip
    assert _value(
        families, "eventdesk_worker_apply_duration_seconds_count", subscriber="test.typed"
    ) == 2  # fmt: skip
    assert _value(families, "eventdesk_worker_reactions_in_flight", subscriber="test.echo") == 0
    assert _value(families, "eventdesk_worker_subscriber_running", subscriber="test.typed") == 1


def _handled(metrics: WorkerMetrics) -> float:
    families = _families(metrics.exposition().decode())
    return float(sum(s.value for s in families["eventdesk_worker_events_handled"].samples))


@pytest.mark.django_db
def test_lease_renewals_are_counted_by_subscriber() -> None:
    metrics = WorkerMetrics()
    worker = Worker(build_registry(["tests.subscribers.EchoReaction"]), metrics=metrics)
    token = worker.leases.new_token()
    Bookmark.objects.create(subscriber_name="test.echo", kind="reaction", lease_owner=token)
    worker.leases.hold(token)
    worker.leases.renew()
    worker.leases.renew()
    families = _families(metrics.exposition().decode())
    renewals = "eventdesk_worker_lease_renewals_total"
    assert _value(families, renewals, subscriber="test.echo") == 2
