"""The operator console's pages, under /admin/console/: the home page (one row per
subscriber with its diagnosis, the counts at the top, refreshed every few seconds by a
small fetch of its fragment), the Workers page, the failure groups with their preview,
and a reason form for each action on one subscriber.

Each page reads through ``overview`` / ``failures`` and acts through the one handler of
each action, like every other door.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.views.decorators.http import require_http_methods

from reactions_admin import errors
from reactions_admin.acts.act import Act, OnFailureGroup, OnSubscriber
from reactions_admin.acts.failure_groups.handler import (
    DISMISS_FAILURE_GROUP,
    RETRY_FAILURE_GROUP,
    failure_group,
)
from reactions_admin.acts.failure_groups.handler import failure_groups as read_failure_groups
from reactions_admin.acts.operations.handler import PAUSE, RESUME, RETRY_NOW
from reactions_admin.doors.admin.actions import acted
from reactions_admin.guards import DISMISS_PERMISSION, OPERATE_PERMISSION
from reactions_admin.reads.overview import (
    Overview,
    authorize_view,
    list_workers,
    overview,
    subscriber_report,
)

#: The home page refreshes its rows this often (milliseconds), without a full reload.
REFRESH_MS = 5000


class ReasonForm(forms.Form):
    """Why the operator acts (recorded in the audit trail)."""

    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 70}))


def _context(request: HttpRequest, title: str, **more: Any) -> dict[str, Any]:
    return {
        **admin.site.each_context(request),
        "title": title,
        "refresh_ms": REFRESH_MS,
        "can_operate": request.user.has_perm(OPERATE_PERMISSION),
        "can_dismiss": request.user.has_perm(DISMISS_PERMISSION),
        **more,
    }


def _refused(request: HttpRequest, exc: errors.ReactionsError) -> HttpResponse:
    return TemplateResponse(
        request,
        "admin/reactions_admin/console/refused.html",
        _context(request, "Refused", error=exc),
        status=exc.status,
    )


def console_overview(request: HttpRequest) -> Overview | None:
    """The overview for the logged-in user, or None when they may not read it."""
    try:
        return overview(request.user)
    except errors.ReactionsError:
        return None


def reading_page(
    template: str, title: str, key: str, read: Callable[[Any], Any]
) -> Callable[[HttpRequest], HttpResponse]:
    """A page that only reads: ``read(user)`` (which authorizes) fills ``template`` under
    ``key``, or the refusal shows."""

    @staff_member_required
    def page(request: HttpRequest) -> HttpResponse:
        try:
            shown = read(request.user)
        except errors.ReactionsError as exc:
            return _refused(request, exc)
        context = _context(request, title, **{key: shown})
        return TemplateResponse(request, f"admin/reactions_admin/console/{template}", context)

    return page


#: The home page: counts, then one row per subscriber with its diagnosis.
home = reading_page("home.html", "Operator console", "overview", overview)
#: Every worker from its heartbeat: live, stopped or gone; what it runs and does.
workers_page = reading_page("workers.html", "Workers", "workers", list_workers)
#: Failing items grouped by error fingerprint.
failures_page = reading_page(
    "failures.html", "Failures by fingerprint", "groups", read_failure_groups
)


@staff_member_required
def fragment(request: HttpRequest) -> HttpResponse:
    """The rows and counts alone, for the home page's refresh."""
    try:
        seen = overview(request.user)
    except errors.ReactionsError as exc:
        return HttpResponse(exc.detail, status=exc.status, content_type="text/plain")
    return TemplateResponse(
        request,
        "admin/reactions_admin/console/fragment.html",
        _context(request, "", overview=seen),
    )


@staff_member_required
@require_http_methods(["GET", "POST"])
def failure_group_page(request: HttpRequest, fingerprint: str) -> HttpResponse:
    """One group: how many items match, each item; then dismiss or retry all of them."""
    form = ReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        act = DISMISS_FAILURE_GROUP if "dismiss" in request.POST else RETRY_FAILURE_GROUP
        try:
            expected = int(request.POST.get("expected_count", "-1"))
        except ValueError:
            messages.error(request, "The previewed count is missing.")
        else:
            given = OnFailureGroup(fingerprint, expected, form.cleaned_data["reason"])
            if acted(request, act, given):
                return redirect("console-failures")
    try:
        found = failure_group(fingerprint, request.user)
    except errors.ReactionsError as exc:
        if request.method == "POST":
            return redirect("console-failures")
        return _refused(request, exc)
    return TemplateResponse(
        request,
        "admin/reactions_admin/console/failure_group.html",
        _context(request, f"Failure group {fingerprint}", group=found, form=form),
    )


#: The acts on one subscriber, by the last part of the page's URL.
ACTS: dict[str, Act[OnSubscriber, Any]] = {"retry-now": RETRY_NOW, "pause": PAUSE, "resume": RESUME}


@staff_member_required
@require_http_methods(["GET", "POST"])
def subscriber_action(request: HttpRequest, name: str, action: str) -> HttpResponse:
    """A reason form for one action on one subscriber; the act goes through its handler."""
    if action not in ACTS:
        return _refused(request, errors.InvalidRequest(f"No action {action!r}."))
    act = ACTS[action]
    form = ReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        given = OnSubscriber(name, form.cleaned_data["reason"])
        if acted(request, act, given, about=f"{name}: "):
            return redirect("console-home")
    try:
        authorize_view(request.user)
        report = subscriber_report(name, request.user)
    except errors.ReactionsError as exc:
        return _refused(request, exc)
    return TemplateResponse(
        request,
        "admin/reactions_admin/console/action.html",
        _context(request, f"{act.verb} {name}", report=report, form=form, verb=act.verb),
    )


urlpatterns = [
    path("", home, name="console-home"),
    path("fragment/", fragment, name="console-fragment"),
    path("workers/", workers_page, name="console-workers"),
    path("failures/", failures_page, name="console-failures"),
    path("failures/<str:fingerprint>/", failure_group_page, name="console-failure-group"),
    path("subscribers/<str:name>/<str:action>/", subscriber_action, name="console-action"),
]
