"""Template helpers of the operator console: times with seconds and timezone, ages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import template
from django.utils import timezone
from django.utils.safestring import SafeString

from reactions_admin.guards import DISMISS_PERMISSION, OPERATE_PERMISSION
from reactions_admin.reads import charts
from reactions_admin.reads.diagnosis import timestamp
from subscribers.pace import ago

register = template.Library()


@register.filter
def stamp(moment: datetime | None) -> str:
    """ "2026-11-28 03:12:09 UTC" (in the server's timezone), or "—"."""
    if moment is None:
        return "—"
    return timestamp(timezone.localtime(moment))


@register.filter
def age(moment: datetime | None) -> str:
    """ "4 min ago" / "in 12 s", or ""."""
    if moment is None:
        return ""
    return ago(moment, timezone.now())


@register.filter
def trend(name: str) -> SafeString:
    """The subscriber's lag sparkline (last hour) with its rate and ETA."""
    return charts.trend(name)


@register.inclusion_tag("admin/reactions_admin/console/live.html", takes_context=True)
def console_live(context: template.Context) -> dict[str, Any]:
    """The home page's live block (counts and rows, refreshed in place), for a user who
    may read the console; nothing for one who may not."""
    from reactions_admin.doors.admin.console import REFRESH_MS, console_overview

    request = context["request"]
    seen = console_overview(request)
    return {
        "overview": seen,
        "refresh_ms": REFRESH_MS,
        "request": request,
        "csrf_token": context.get("csrf_token"),
        "can_operate": request.user.has_perm(OPERATE_PERMISSION),
        "can_dismiss": request.user.has_perm(DISMISS_PERMISSION),
    }
