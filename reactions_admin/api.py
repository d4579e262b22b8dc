"""The agent REST API (django-ninja) at ``/agent/``: parse, call the handler, map its errors.

Authentication: ``Authorization: Bearer <token>`` or a Django session (CSRF
enforced on writes). Every error is JSON ``{"code", "detail"}``.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import HttpError, ValidationError
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf
from pydantic import Field

from reactions_admin import errors
from reactions_admin.decider import MAX_REASON_LENGTH, visible_character_class
from reactions_admin.doors import actor_for_token
from reactions_admin.handler import dismiss_event_in_reaction
from reactions_admin.parked import (
    dismiss_parked_stream,
    dismiss_stream_head,
    list_parked_streams,
    retry_parked_stream,
)
from reactions_admin.reactions import get_reaction, list_reactions

logger = logging.getLogger("eventdesk.api")


class BearerToken(HttpBearer):
    """An API token (``manage.py create_api_token``). A token that is sent but not
    valid is refused outright rather than falling back to the session."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        return actor_for_token(token)


class CsrfSession(APIKeyCookie):
    """The Django session of a logged-in user; unsafe methods must carry the CSRF token."""

    param_name = settings.SESSION_COOKIE_NAME

    def __call__(self, request: HttpRequest) -> Any:
        if not request.user.is_authenticated:
            return None
        if check_csrf(request) is not None:
            raise errors.CsrfFailed("CSRF verification failed: send the X-CSRFToken header.")
        return request.user

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        return None  # __call__ decides


api = NinjaAPI(
    title="Eventdesk agent API",
    version="1",
    description="Operate Eventdesk's reactions: read their health, dismiss a poison event.",
    urls_namespace="agent",
    docs_url="/docs",
    auth=[BearerToken(), CsrfSession()],
)


class CursorOut(Schema):
    transaction_id: int
    position: int


class ErrorOut(Schema):
    """Every refusal: a stable ``code`` and a ``detail`` for people."""

    code: str
    detail: str


class ValidationErrorOut(ErrorOut):
    """A body or parameter of the wrong shape (422 ``validation_error``), with each problem."""

    errors: list[dict[str, Any]]


#: The decider's rule for a reason, stated for clients in the OpenAPI document: no NUL, at
#: least one visible character (a letter, number, punctuation or symbol by its Unicode
#: category: the class is built from the decider's own test), and after trimming whitespace
#: at most MAX_REASON_LENGTH characters (the lookahead refuses two non-space characters
#: MAX_REASON_LENGTH or more apart). It must read the same in Python's ``re`` and in a JSON
#: Schema validator's ECMA-262 dialect: astral characters stand as themselves (see
#: decider._escape), and lone surrogates, which no such validator can name, are left to the
#: handler (400 unstorable_text). The handler enforces the rule (400 reason_required /
#: reason_too_long / unstorable_text), not the schema parser, so each refusal keeps its code.
REASON_PATTERN: str = (
    rf"^(?!\s*\S[\s\S]{{{MAX_REASON_LENGTH - 1}}}[\s\S]*\S)"
    rf"[^\x00]*{visible_character_class()}[^\x00]*$"
)


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
    parked_at: str
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


def refusals(*statuses: int) -> dict[int, Any]:
    """The error responses an operation can give, each documented with its body."""
    return {status: ValidationErrorOut if status == 422 else ErrorOut for status in statuses}


#: Every operation: no or bad credentials (401), CSRF or permission (403), database down (503).
ALWAYS = (401, 403, 503)


@api.get("/reactions", response={200: list[ReactionOut], **refusals(*ALWAYS)}, tags=["reactions"])
def reactions(request: HttpRequest) -> Any:
    """Every reaction: status, cursor, lag, failing event, last error."""
    return list_reactions(request.auth)  # type: ignore[attr-defined]


@api.get(
    "/reactions/{name}", response={200: ReactionOut, **refusals(*ALWAYS, 404)}, tags=["reactions"]
)
def reaction(request: HttpRequest, name: str) -> Any:
    """One reaction's health."""
    return get_reaction(name, request.auth)  # type: ignore[attr-defined]


@api.post(
    "/reactions/{name}/dismiss-event",
    response={200: DismissOut, **refusals(*ALWAYS, 400, 404, 409, 413, 422)},
    tags=["reactions"],
)
def dismiss_event(request: HttpRequest, name: str, body: DismissIn) -> Any:
    """Dismiss a poison event: move the reaction's bookmark to it and audit the decision.

    Needs the permission ``reactions_admin.dismiss_event``. 400 blank or too long
    reason, 404 unknown reaction or event, 409 the event is not after the bookmark,
    413 a body over the server's upload limit, 503 the event store is not durable or
    the database is unavailable.
    """
    result = dismiss_event_in_reaction(
        name,
        body.event_id,
        body.reason,
        request.auth,  # type: ignore[attr-defined]
        via="rest",
    )
    return result.as_payload()


@api.get(
    "/reactions/{name}/parked-streams",
    response={200: list[ParkedStreamOut], **refusals(*ALWAYS, 404)},
    tags=["parked streams"],
)
def parked_streams(request: HttpRequest, name: str) -> Any:
    """A stream-ordered reaction's parked streams: the head event, its error and attempts,
    since when, and how many events wait behind it (the longest parked first)."""
    return list_parked_streams(name, request.auth)  # type: ignore[attr-defined]


@api.post(
    "/reactions/{name}/parked-streams/dismiss-head",
    response={200: DismissOut, **refusals(*ALWAYS, 400, 404, 409, 413, 422)},
    tags=["parked streams"],
)
def dismiss_head(request: HttpRequest, name: str, body: StreamIn) -> Any:
    """Dismiss the head event of a parked stream (the next event becomes the head and
    runs), audited. The same act as ``dismiss-event`` with the head's id. Needs
    ``reactions_admin.dismiss_event``. 409 ``stream_not_parked``, ``not_stream_head``..."""
    auth = request.auth  # type: ignore[attr-defined]
    return dismiss_stream_head(name, body.stream_id, body.reason, auth, via="rest").as_payload()


@api.post(
    "/reactions/{name}/parked-streams/dismiss",
    response={200: StreamDismissOut, **refusals(*ALWAYS, 400, 404, 409, 413, 422)},
    tags=["parked streams"],
)
def dismiss_stream(request: HttpRequest, name: str, body: StreamIn) -> Any:
    """Dismiss a whole parked stream: the head and every event waiting behind it, one
    decision per event, all or nothing. Needs ``reactions_admin.dismiss_event``.
    409 ``stream_not_parked``."""
    auth = request.auth  # type: ignore[attr-defined]
    return dismiss_parked_stream(name, body.stream_id, body.reason, auth, via="rest").as_payload()


@api.post(
    "/reactions/{name}/parked-streams/retry",
    response={200: StreamRetryOut, **refusals(*ALWAYS, 400, 404, 409, 413, 422)},
    tags=["parked streams"],
)
def retry_stream(request: HttpRequest, name: str, body: RetryIn) -> Any:
    """Retry a parked stream now: its head runs again at once (its attempt count kept, so
    one more failure parks it again), and the events behind it follow in order. Audited.
    Needs ``reactions_admin.operate_subscriber``. 409 ``stream_not_parked``."""
    auth = request.auth  # type: ignore[attr-defined]
    result = retry_parked_stream(name, body.stream_id, auth, reason=body.reason, via="rest")
    return result.as_payload()


def _error(request: HttpRequest, status: int, code: str, detail: str, **extra: Any) -> HttpResponse:
    return api.create_response(request, {"code": code, "detail": detail, **extra}, status=status)


@api.exception_handler(errors.ReactionsError)
def _reactions_error(request: HttpRequest, exc: errors.ReactionsError) -> HttpResponse:
    return _error(request, exc.status, exc.code, exc.detail)


@api.exception_handler(RequestDataTooBig)
def _request_too_large(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    # Raised wherever the body is first read: ninja parsing it, or the session door's
    # CSRF check reading a form. A refusal of the client's request, not a server fault.
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    too_large = errors.RequestTooLarge(f"The request body is larger than {limit} bytes.")
    return _reactions_error(request, too_large)


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    problems = [
        f"{'.'.join(str(part) for part in error.get('loc', ()))}: {error.get('msg', 'invalid')}"
        for error in exc.errors
    ]
    detail = "Invalid request: " + "; ".join(problems)
    return _error(request, 422, "validation_error", detail, errors=exc.errors)


_HTTP_CODES = {400: "malformed_request", 401: "not_authenticated", 403: "permission_denied"}


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return _error(request, exc.status_code, code, str(exc))


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, 404, "not_found", "Not found.")


@api.exception_handler(Exception)
def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    if isinstance(exc, OperationalError | InterfaceError):
        return _error(request, 503, "database_unavailable", "The database is unavailable.")
    # Tracebacks go to the log, never to the client.
    logger.exception("unexpected error in %s %s", request.method, request.path)
    return _error(request, 500, "internal_error", "An unexpected error occurred.")


# The console's operations (subscribers, workers, actions) live in their own module.
from reactions_admin.api_console import router as console_router  # noqa: E402

api.add_router("", console_router)
