"""The MCP server over streamable HTTP, at ``/mcp`` beside Django (see ``config/asgi.py``).

A gate in front of the SDK's app refuses, before any MCP processing, a Host not
in ``ALLOWED_HOSTS`` and a foreign ``Origin`` (403: DNS-rebinding and
cross-site requests), and a missing or invalid bearer token (401).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from reactions_admin import errors
from reactions_admin.acts.tokens.handler import bearer_secret
from reactions_admin.doors.access import actor_for_token
from reactions_admin.doors.mcp.door import in_django
from reactions_admin.doors.mcp.server import build_mcp_server

MCP_PATH = "/mcp"


class McpGate:
    """ASGI middleware: Host, Origin and bearer-token checks in front of the MCP app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if not _host_allowed(host):
            await _refuse(send, 403, "host_refused", "This Host is not allowed.")
            return
        origin = headers.get("origin")
        if origin and not _origin_allowed(origin, host):
            await _refuse(send, 403, "origin_refused", "Cross-origin requests are refused.")
            return
        secret = bearer_secret(headers.get("authorization"))
        if secret is None or not await sync_to_async(_token_is_live)(secret):
            await _refuse(
                send, 401, "not_authenticated", "A valid API token is required (Bearer).",
                extra_headers=[(b"www-authenticate", b"Bearer")],
            )  # fmt: skip
            return
        await self.app(scope, receive, send)


def _token_is_live(secret: str) -> bool:
    def live() -> bool:
        try:
            actor_for_token(secret)
        except errors.NotAuthenticated:
            return False
        return True

    return in_django(live)


def _allowed_hosts() -> list[str]:
    if settings.ALLOWED_HOSTS:
        return list(settings.ALLOWED_HOSTS)
    return [".localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else []


def _host_allowed(host: str) -> bool:
    domain, _ = split_domain_port(host)
    return bool(domain) and validate_host(domain, _allowed_hosts())


def _origin_allowed(origin: str, host: str) -> bool:
    # Same origin (the browser page was served by us) or explicitly trusted.
    if origin in getattr(settings, "CSRF_TRUSTED_ORIGINS", []):
        return True
    return urlsplit(origin).netloc.lower() == host.lower()


async def _refuse(
    send: Send,
    status: int,
    code: str,
    detail: str,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = json.dumps({"code": code, "detail": detail}).encode()
    response_headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *(extra_headers or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": response_headers})
    await send({"type": "http.response.body", "body": body})


def build_mcp_http_app() -> Any:
    """The gated streamable-HTTP MCP app (stateless, JSON responses): an ASGI app whose
    lifespan runs the SDK's session manager."""
    starlette_app = build_mcp_server().streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=True,
        json_response=True,
        # Host and Origin are checked by McpGate against Django's settings.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    return McpGate(starlette_app)
