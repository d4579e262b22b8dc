"""Every error answered under ``/agent/`` is JSON ``{"code", "detail"}``.

The agent API maps its own errors (``reactions_admin/doors/rest/api.py``), but some answers are
given before or around it: Django's 404 page for a path no operation matches (say
``/agent/reactions/..%2F..%2Fadmin``, whose decoded ``/`` no route accepts), ninja's
plain-text 405, Django's 500 page. This middleware rewrites any such non-JSON error
response under the prefix, keeping its status and its ``Allow``/``WWW-Authenticate``
headers, so a client of the agent API never has to parse HTML. It adds no route, so
the OpenAPI document is unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase
from django.utils.decorators import sync_and_async_middleware

#: Where the agent API is mounted (``config/urls.py`` mounts it here).
AGENT_PREFIX = "/agent/"

#: The code and detail of an error response that carried none, by status.
_ERRORS: dict[int, tuple[str, str]] = {
    400: ("malformed_request", "The request is malformed."),
    401: ("not_authenticated", "Authentication is required."),
    403: ("permission_denied", "The request is refused."),
    404: ("not_found", "Nothing here: see /agent/docs for the operations of the agent API."),
    405: ("method_not_allowed", "This method is not allowed on this path."),
    413: ("request_too_large", "The request body is too large."),
}
_KEPT_HEADERS = ("Allow", "WWW-Authenticate")

Response = HttpResponseBase
SyncGetResponse = Callable[[HttpRequest], Response]
AsyncGetResponse = Callable[[HttpRequest], Awaitable[Response]]


def is_agent_path(path: str) -> bool:
    """Whether ``path`` (a request's ``path_info``) is the agent API's."""
    return path.startswith(AGENT_PREFIX) or path == AGENT_PREFIX.rstrip("/")


def as_json_error(request: HttpRequest, response: Response) -> Response:
    """``response`` itself, or, for a non-JSON error under ``/agent/``, its JSON form."""
    if response.status_code < 400 or not is_agent_path(request.path_info):
        return response
    if response.get("Content-Type", "").startswith("application/json"):
        return response
    status = response.status_code
    code, detail = _ERRORS.get(status) or (
        ("internal_error", "An unexpected error occurred.")
        if status >= 500
        else ("http_error", f"The request failed with status {status}.")
    )
    if status == 405 and response.get("Allow"):
        detail = f"{request.method} is not allowed on this path; allowed: {response['Allow']}."
    rewritten = JsonResponse({"code": code, "detail": detail}, status=status)
    for header in _KEPT_HEADERS:
        if header in response:
            rewritten[header] = response[header]
    return rewritten


@sync_and_async_middleware
def agent_json_errors(
    get_response: SyncGetResponse | AsyncGetResponse,
) -> SyncGetResponse | AsyncGetResponse:
    """Django middleware (sync and async): see the module docstring. Listed last in
    ``MIDDLEWARE``, it sees the URL resolver's 404 and the view's answer first."""
    if iscoroutinefunction(get_response):
        async_get_response: AsyncGetResponse = get_response

        async def async_middleware(request: HttpRequest) -> Response:
            return as_json_error(request, await async_get_response(request))

        return async_middleware

    sync_get_response: SyncGetResponse = get_response  # type: ignore[assignment]

    def middleware(request: HttpRequest) -> Response:
        return as_json_error(request, sync_get_response(request))

    return middleware
