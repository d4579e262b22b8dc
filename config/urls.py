"""URL routes: the admin console, the agent API (``/agent/``, docs at ``/agent/docs``) and
the Prometheus gauges (``/metrics``).

The MCP endpoint (``/mcp``) is served beside Django by ``config/asgi.py``.
"""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from reactions_admin.doors.admin import console as console_views
from reactions_admin.doors.rest.api import api
from reactions_admin.doors.rest.errors import AGENT_PREFIX
from reactions_admin.reads.metrics import metrics_view

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    # The operator console's pages come first: "admin/" would take every path below it.
    path("admin/console/", include(console_views)),
    path("admin/", admin.site.urls),
    path(AGENT_PREFIX.lstrip("/"), api.urls),
    # Prometheus gauges computed from the database (who may read them: metrics_view).
    path("metrics", metrics_view, name="metrics"),
]
