"""The console's REST operations under ``/agent/``: every subscriber with its diagnosis, the
workers, and the operator actions (retry now, pause, resume, bulk by error fingerprint).

Each operation parses, calls one handler, and returns its JSON; refusals are mapped once,
by ``reactions_admin.doors.rest.api``'s exception handlers, to ``{"code", "detail"}``.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import Field, field_validator

from reactions_admin.acts.act import OnFailureGroup
from reactions_admin.acts.failure_groups.handler import (
    DISMISS_FAILURE_GROUP,
    RETRY_FAILURE_GROUP,
    failure_group,
    failure_groups,
)
from reactions_admin.acts.operations.handler import PAUSE, RESUME, RETRY_NOW
from reactions_admin.doors.rest.acts import add_subscriber_act_route, operation, run
from reactions_admin.doors.rest.schemas import (
    ALWAYS,
    CursorOut,
    ReasonIn,
    RebuildProgressOut,
    refusals,
)
from reactions_admin.reads.overview import list_workers, overview, subscriber_report

router = Router(tags=["subscribers"])


class CauseOut(Schema):
    state: str
    text: str


class DiagnosisOut(Schema):
    """Why a subscriber is where it is: a headline ``state`` and ``summary``, each cause."""

    state: str = Field(
        description="caught_up, catching_up, paused, wedged, lease_orphaned, no_worker, "
        "retrying, parked, intake_paused or horizon"
    )
    summary: str
    stalled: bool
    causes: list[CauseOut]
    rate: float | None = Field(description="Events per second, when a history is kept.")
    eta_seconds: float | None


class PausedOut(Schema):
    by: str
    at: str | None
    reason: str


class SubscriberOut(Schema):
    """A projection or a reaction: its bookmark, lag and diagnosis."""

    name: str
    kind: str
    status: str
    cursor: CursorOut
    lag: int
    lag_capped: bool
    attempts: int
    failing_event_id: uuid.UUID | None
    last_error: str
    failed_at: str | None
    next_retry_at: str | None
    lease_owner: str
    paused: PausedOut | None
    ordering: str
    parked_streams: int
    live_workers: list[str]
    diagnosis: DiagnosisOut
    rebuild: RebuildProgressOut | None = Field(
        None, description="A projection's rebuild in progress: phase, events done, rate, ETA."
    )


class CountsOut(Schema):
    wedged: int
    retrying: int
    paused: int
    stalled: int
    total: int


class WorkerOut(Schema):
    """A ``run_subscribers`` process, from its heartbeat."""

    worker_id: str
    host: str
    pid: int
    state: str = Field(description="live, stopped (a clean shutdown) or gone (silent)")
    started_at: str
    last_seen_at: str
    silent_seconds: float
    subscribers: list[str]
    doing: list[dict[str, Any]]
    wakeups_working: bool | None = Field(
        None,
        description="Whether its own check NOTIFY reached its listener: false when it only "
        "polls (LISTEN through a transaction pooler); null when not known yet",
    )
    wakeups: str = Field("", description='"wake-ups are not arriving; polling every N s", or ""')


class OverviewOut(Schema):
    counts: CountsOut
    subscribers: list[SubscriberOut]
    workers: list[WorkerOut]
    generated_at: str


def _refusals(*statuses: int) -> dict[int, Any]:
    return refusals(*ALWAYS, *statuses)


@router.get("/subscribers", response={200: OverviewOut, **_refusals()})
def subscribers(request: HttpRequest) -> Any:
    """Every subscriber (projections and reactions) with its diagnosis, the counts
    (wedged, retrying, paused, stalled) and the workers. Needs
    ``reactions_admin.view_console`` (or a permission that implies reading)."""
    return overview(request.auth).as_json()  # type: ignore[attr-defined]


@router.get("/subscribers/{name}", response={200: SubscriberOut, **_refusals(404)})
def subscriber(request: HttpRequest, name: str) -> Any:
    """One subscriber with its diagnosis (404 ``subscriber_not_found``)."""
    return subscriber_report(name, request.auth).as_json()  # type: ignore[attr-defined]


@router.get("/workers", response={200: list[WorkerOut], **_refusals()})
def workers(request: HttpRequest) -> Any:
    """The workers seen in the last day, from their heartbeats: live, stopped or gone."""
    return [worker.as_json() for worker in list_workers(request.auth)]  # type: ignore[attr-defined]


# --- actions -----------------------------------------------------------------------------


class ActionOut(Schema):
    """What an accepted action did, and the decision that records it."""

    decision_event_id: uuid.UUID
    subscriber_name: str
    choice: str = Field(description="RetriedNow, Paused or Resumed")
    status_before: str
    status_after: str


# Each route's view is named as its act (ninja names the operation after it).
for path, act in (("retry-now", RETRY_NOW), ("pause", PAUSE), ("resume", RESUME)):
    route = f"/subscribers/{{name}}/{path}"
    add_subscriber_act_route(router, route, act, ActionOut, view=act.name, module=__name__)


class FailingItemOut(Schema):
    subscriber: str
    kind: str
    event_id: uuid.UUID
    stream_id: str | None = Field(
        None, description="For the head of a parked stream: its stream (else null)."
    )
    error: str


class FailureGroupOut(Schema):
    """Failing items sharing one fingerprint: exception type and masked message."""

    fingerprint: str
    exception_type: str
    pattern: str = Field(description="The message with numbers, ids and quoted values masked.")
    count: int = Field(description="How many items match now: send it as expected_count.")
    dismissable: bool
    sample_error: str
    subscribers: list[str]
    items: list[FailingItemOut]


class GroupActionIn(ReasonIn):
    expected_count: int = Field(
        ge=0, description="The count the preview showed; 409 group_changed if it differs now."
    )

    @field_validator("expected_count", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: Any) -> Any:
        if isinstance(value, bool):  # JSON true/false is no count
            raise ValueError("expected_count is an integer, not a boolean")
        return value


class GroupActionOut(Schema):
    fingerprint: str
    choice: str = Field(description="GroupDismissed or GroupRetried")
    count: int
    decision_event_id: uuid.UUID
    item_decision_ids: list[uuid.UUID] = Field(description="One decision per dismissed event.")


@router.get("/failures", response={200: list[FailureGroupOut], **_refusals()})
def failures(request: HttpRequest) -> Any:
    """Every failing item (a subscriber retrying or wedged on an event), grouped by error
    fingerprint, the largest group first."""
    return [found.as_json() for found in failure_groups(request.auth)]  # type: ignore[attr-defined]


@router.get("/failures/{fingerprint}", response={200: FailureGroupOut, **_refusals(404)})
def failure(request: HttpRequest, fingerprint: str) -> Any:
    """One group: how many items match before you act (404 ``failure_group_not_found``)."""
    return failure_group(fingerprint, request.auth).as_json()  # type: ignore[attr-defined]


@router.post("/failures/{fingerprint}/dismiss", **operation(DISMISS_FAILURE_GROUP, GroupActionOut))
def dismiss_group(request: HttpRequest, fingerprint: str, body: GroupActionIn) -> Any:
    given = OnFailureGroup(fingerprint, body.expected_count, body.reason)
    return run(request, DISMISS_FAILURE_GROUP, given)


@router.post("/failures/{fingerprint}/retry", **operation(RETRY_FAILURE_GROUP, GroupActionOut))
def retry_group(request: HttpRequest, fingerprint: str, body: GroupActionIn) -> Any:
    given = OnFailureGroup(fingerprint, body.expected_count, body.reason)
    return run(request, RETRY_FAILURE_GROUP, given)
