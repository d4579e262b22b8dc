"""The console's REST operations under ``/agent/``: every subscriber with its diagnosis, the
workers, and the operator actions (retry now, pause, resume, bulk by error fingerprint).

Each operation parses, calls one handler, and returns its JSON; refusals are mapped once,
by ``reactions_admin.api``'s exception handlers, to ``{"code", "detail"}``.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import Field

from reactions_admin.overview import list_workers, overview, subscriber_report

router = Router(tags=["subscribers"])


class CursorOut(Schema):
    transaction_id: int
    position: int


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


class OverviewOut(Schema):
    counts: CountsOut
    subscribers: list[SubscriberOut]
    workers: list[WorkerOut]
    generated_at: str


def _refusals(*statuses: int) -> dict[int, Any]:
    from reactions_admin.api import ALWAYS, refusals

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
