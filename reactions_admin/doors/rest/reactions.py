"""The REST door of the reaction acts under ``/agent/reactions/``: list and read reactions,
dismiss an event, and act on a stream-ordered reaction's parked streams.

Each operation parses, calls one handler, and returns its JSON; refusals are mapped once,
by ``reactions_admin.doors.rest.api``'s exception handlers, to ``{"code", "detail"}``.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import Field

from reactions_admin.acts.act import OnEvent, OnStream
from reactions_admin.acts.dismissal.handler import DISMISS_EVENT
from reactions_admin.acts.parked_streams.handler import (
    DISMISS_PARKED_STREAM,
    DISMISS_STREAM_HEAD,
    RETRY_PARKED_STREAM,
)
from reactions_admin.acts.reasons import MAX_REASON_LENGTH
from reactions_admin.doors.rest.acts import operation, run
from reactions_admin.doors.rest.schemas import ALWAYS, REASON_PATTERN, CursorOut, refusals
from reactions_admin.reads.reactions import get_reaction, list_parked_streams, list_reactions

router = Router()


class DismissIn(Schema):
    event_id: uuid.UUID
    reason: str = Field(
        description=(
            "Why the event is dismissed (recorded in the audit trail). Trimmed; it must not "
            f"be blank (400 reason_required) nor longer than {MAX_REASON_LENGTH} characters "
            "(400 reason_too_long), nor hold a NUL character (400 unstorable_text)."
        ),
        json_schema_extra={"pattern": REASON_PATTERN},
    )


class DismissOut(Schema):
    decision_event_id: uuid.UUID
    subscriber_name: str
    event_id: uuid.UUID
    cursor_before: CursorOut
    cursor_after: CursorOut
    events_passed_over: int
    handled_events_passed_over: int
    #: "global": the bookmark moved to the event; "stream": a parked head's row was deleted.
    ordering: str
    stream_id: str | None


class StreamIn(Schema):
    stream_id: str = Field(description="The parked stream.")
    reason: str = Field(
        description="Why (recorded in the audit trail); required to dismiss, optional to retry."
    )


class RetryIn(Schema):
    stream_id: str = Field(description="The parked stream.")
    reason: str = Field(default="", description="Why (recorded in the audit trail); optional.")


class ParkedStreamOut(Schema):
    stream_id: str
    event_id: uuid.UUID
    event_type: str
    cursor: CursorOut
    attempts: int
    last_error: str
    #: When the head last parked (a failed "retry now" parks it again).
    parked_at: str
    #: When it first parked: how long the stream has been stuck.
    first_parked_at: str
    #: Events of the stream waiting behind the head.
    waiting: int


class StreamDismissOut(Schema):
    subscriber_name: str
    stream_id: str
    events_dismissed: int
    dismissed: list[DismissOut]


class StreamRetryOut(Schema):
    decision_event_id: uuid.UUID
    subscriber_name: str
    stream_id: str
    event_id: uuid.UUID
    attempts: int
    waiting: int


class ReactionOut(Schema):
    name: str
    status: str
    cursor: CursorOut
    lag: int
    attempts: int
    failing_event_id: uuid.UUID | None
    last_error: str
    failed_at: str | None
    next_retry_at: str | None
    lease_owner: str
    #: "global" or "stream"; for "stream", the cursor is the intake point.
    ordering: str
    #: A stream-ordered reaction with parked streams (its other streams go on).
    degraded: bool
    parked_streams: int
    in_flight: int
    #: Intake stopped: the unfinished rows of streams that are not parked reached intake_limit.
    intake_paused: bool


@router.get(
    "/reactions", response={200: list[ReactionOut], **refusals(*ALWAYS)}, tags=["reactions"]
)
def reactions(request: HttpRequest) -> Any:
    """Every reaction: status, cursor, lag, failing event, last error."""
    return list_reactions(request.auth)  # type: ignore[attr-defined]


@router.get(
    "/reactions/{name}", response={200: ReactionOut, **refusals(*ALWAYS, 404)}, tags=["reactions"]
)
def reaction(request: HttpRequest, name: str) -> Any:
    """One reaction's health."""
    return get_reaction(name, request.auth)  # type: ignore[attr-defined]


@router.post(
    "/reactions/{name}/dismiss-event", **operation(DISMISS_EVENT, DismissOut, tags=["reactions"])
)
def dismiss_event(request: HttpRequest, name: str, body: DismissIn) -> Any:
    return run(request, DISMISS_EVENT, OnEvent(name, body.event_id, body.reason))


@router.get(
    "/reactions/{name}/parked-streams",
    response={200: list[ParkedStreamOut], **refusals(*ALWAYS, 404)},
    tags=["parked streams"],
)
def parked_streams(request: HttpRequest, name: str) -> Any:
    """A stream-ordered reaction's parked streams: the head event, its error and attempts,
    since when, and how many events wait behind it (the longest parked first)."""
    return list_parked_streams(name, request.auth)  # type: ignore[attr-defined]


@router.post(
    "/reactions/{name}/parked-streams/dismiss-head",
    **operation(DISMISS_STREAM_HEAD, DismissOut, tags=["parked streams"]),
)
def dismiss_head(request: HttpRequest, name: str, body: StreamIn) -> Any:
    return run(request, DISMISS_STREAM_HEAD, OnStream(name, body.stream_id, body.reason))


@router.post(
    "/reactions/{name}/parked-streams/dismiss",
    **operation(DISMISS_PARKED_STREAM, StreamDismissOut, tags=["parked streams"]),
)
def dismiss_stream(request: HttpRequest, name: str, body: StreamIn) -> Any:
    return run(request, DISMISS_PARKED_STREAM, OnStream(name, body.stream_id, body.reason))


@router.post(
    "/reactions/{name}/parked-streams/retry",
    **operation(RETRY_PARKED_STREAM, StreamRetryOut, tags=["parked streams"]),
)
def retry_stream(request: HttpRequest, name: str, body: RetryIn) -> Any:
    return run(request, RETRY_PARKED_STREAM, OnStream(name, body.stream_id, body.reason))
