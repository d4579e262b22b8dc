"""ASGI entry point: Django, with the MCP server (streamable HTTP) at ``/mcp``.

Serve with ``uvicorn config.asgi:application``. Lifespan events go to the MCP
app (its session manager must run); Django does not handle lifespan.
"""

import os

from django.core.asgi import get_asgi_application
from starlette.types import ASGIApp, Receive, Scope, Send

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_asgi_application()

from reactions_admin.mcp_http import MCP_PATH, build_mcp_http_app  # noqa: E402  (needs Django set up)


def build_application() -> ASGIApp:
    """A fresh application: Django, and a new MCP app. The SDK's session manager runs
    only once per instance, so each server (a test's uvicorn, say) needs its own."""
    mcp_application = build_mcp_http_app()

    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        """Route ``/mcp`` and lifespan to the MCP app, everything else to Django."""
        path = scope.get("path", "")
        if scope["type"] == "lifespan" or path == MCP_PATH or path.startswith(MCP_PATH + "/"):
            await mcp_application(scope, receive, send)
        else:
            await django_application(scope, receive, send)  # type: ignore[arg-type]

    return application


application = build_application()
