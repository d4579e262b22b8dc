"""ASGI entry point: Django, with the MCP server (streamable HTTP) at ``/mcp``.

Serve with ``uvicorn config.asgi:application``. Lifespan events go to the MCP
app (its session manager must run); Django does not handle lifespan.
"""

import os
import warnings

from django.core.asgi import get_asgi_application
from starlette.types import ASGIApp, Receive, Scope, Send

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# WhiteNoise hands Django a file to iterate synchronously; under ASGI Django reads it in
# a worker thread and warns once that it would rather have an async iterator. WhiteNoise
# has no ASGI mode (evansd/whitenoise#359); for the admin's and Swagger's assets this is
# harmless, and the warning would be the first thing a new user reads.
warnings.filterwarnings(
    "ignore", message="StreamingHttpResponse must consume synchronous iterators", category=Warning
)
django_application = get_asgi_application()

from reactions_admin.doors.mcp.http import MCP_PATH, build_mcp_http_app  # noqa: E402  (needs Django set up)


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
