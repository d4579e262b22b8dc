"""URL routes: the admin console and the agent API (``/agent/``, docs at ``/agent/docs``).

The MCP endpoint (``/mcp``) is served beside Django by ``config/asgi.py``.
"""

from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from reactions_admin.agent_errors import AGENT_PREFIX
from reactions_admin.api import api

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path(AGENT_PREFIX.lstrip("/"), api.urls),
]
