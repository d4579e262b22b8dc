"""The agent REST API (django-ninja) at ``/agent/``: parse, call the handler, map its errors.

Authentication: ``Authorization: Bearer <token>`` or a Django session (CSRF
enforced on writes). Every error is JSON ``{"code", "detail"}``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import HttpError, ValidationError
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from reactions_admin import errors
from reactions_admin.doors.access import actor_for_token
from reactions_admin.doors.rest.console import router as console_router
from reactions_admin.doors.rest.reactions import router as reactions_router
from reactions_admin.doors.rest.rebuilds import router as rebuilds_router

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


def _as_sent(location: tuple[Any, ...]) -> tuple[Any, ...]:
    """Where a problem is, as the client sent it: ninja puts the name of the view's body
    parameter after ``body`` (``body.body.reason``), a name the client never sees; every
    operation takes one body, so the field is ``body.reason``."""
    if location[:1] == ("body",):
        return ("body", *location[2:])
    return location


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    found = [{**error, "loc": _as_sent(tuple(error.get("loc", ())))} for error in exc.errors]
    problems = [
        f"{'.'.join(str(part) for part in error['loc'])}: {error.get('msg', 'invalid')}"
        for error in found
    ]
    detail = "Invalid request: " + "; ".join(problems)
    return _error(request, 422, "validation_error", detail, errors=found)


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


api.add_router("", reactions_router)
api.add_router("", console_router)
api.add_router("", rebuilds_router)
