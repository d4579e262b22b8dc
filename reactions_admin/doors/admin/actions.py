"""The operator's actions on the Bookmarks changelist: "Retry now…", "Pause…", "Resume…".

Like ``delete_selected``: the action shows a confirmation page listing the selected
subscribers with their diagnosis and asking for a reason; the confirmation calls the
one handler for each and returns to the changelist with its outcome as a message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.html import format_html

from reactions_admin.acts.act import Act, OnSubscriber
from reactions_admin.acts.operations.handler import PAUSE, RESUME, RETRY_NOW
from reactions_admin.errors import ReactionsError
from reactions_admin.guards import DISMISS_PERMISSION, OPERATE_PERMISSION, is_storable
from reactions_admin.reads.overview import SubscriberReport, read_as_shell
from subscribers.models import Bookmark

TEMPLATE = "admin/reactions_admin/subscriber_action.html"


class ReasonForm(forms.Form):
    """The operator's reason (recorded in the audit trail)."""

    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text="Why you act; recorded in the audit trail.",
    )


class ActPermissions:
    """``has_<codename>_permission`` for the acts a changelist offers, as
    ``@admin.action(permissions=[...])`` asks its ModelAdmin (mixed in before it)."""

    def has_dismiss_event_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(DISMISS_PERMISSION)

    def has_operate_subscriber_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(OPERATE_PERMISSION)


def error_cell(text: str) -> str:
    """An error in a changelist's cell: its first 89 characters, the whole in the title."""
    if len(text) <= 90:
        return text
    return format_html('<span title="{}">{}…</span>', text, text[:89])


M = TypeVar("M", bound=Model)
#: A changelist action, as Django's admin calls it.
AdminAction = Callable[["admin.ModelAdmin[M]", HttpRequest, "QuerySet[M]"], TemplateResponse | None]


def permission_name(act: Act[Any, Any]) -> str:
    """The admin's name for the act's permission: a ModelAdmin offering the action has
    ``has_<name>_permission`` ("reactions_admin.operate_subscriber" -> "operate_subscriber")."""
    return act.permission.partition(".")[2]


def selection_is_storable(
    request: HttpRequest, modeladmin: admin.ModelAdmin[Any] | None = None, what: str = ""
) -> bool:
    """Whether PostgreSQL can even compare the selected keys: a crafted selection holding a
    NUL character selects nothing. Given the ``modeladmin``, a refusal says so ("Select at
    least one ``what``.")."""
    storable = all(is_storable(pk) for pk in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME))
    if not storable and modeladmin is not None:
        modeladmin.message_user(request, f"Select at least one {what}.", messages.ERROR)
    return storable


def acted(
    request: HttpRequest, act: Act[Any, Any], given: Any, *, about: str = "", done: str = ""
) -> bool:
    """Run ``act`` on ``given`` as the logged-in user, its outcome shown as a message (a
    refusal's begins with ``about``, a success's with ``done``); True when it was done."""
    try:
        result = act(given, request.user, via="admin")
    except ReactionsError as exc:
        messages.error(request, f"{about}{exc.detail} ({exc.code})")
        return False
    messages.success(request, f"{done}{result.text()}")
    return True


def admin_action(
    act: Act[Any, Any], name: str, action: AdminAction[M], *, description: str = ""
) -> AdminAction[M]:
    """``action`` as the changelist action ``name`` of ``act``: described "Pause…" (the
    act's verb), needing the act's permission (``has_<codename>_permission``)."""
    action.__name__ = action.__qualname__ = name
    action.__doc__ = act.doc
    described = description or f"{act.verb}…"
    return admin.action(description=described, permissions=[permission_name(act)])(action)


def subscriber_action(act: Act[OnSubscriber, Any], name: str) -> AdminAction[Bookmark]:
    """The Bookmarks changelist action ``name`` for ``act``: like ``delete_selected``, a
    confirmation page (the selected subscribers with their diagnosis, a reason), then the
    act for each selected subscriber, its outcome as a message."""

    def action(
        modeladmin: admin.ModelAdmin[Bookmark], request: HttpRequest, queryset: QuerySet[Bookmark]
    ) -> TemplateResponse | None:
        return _confirm_then(name, act, modeladmin, request, queryset)

    return admin_action(act, name, action)


def _confirm_then(
    name: str,
    act: Act[OnSubscriber, Any],
    modeladmin: admin.ModelAdmin[Bookmark],
    request: HttpRequest,
    queryset: QuerySet[Bookmark],
) -> TemplateResponse | None:
    if not selection_is_storable(request, modeladmin, "subscriber"):
        return None
    selected = list(queryset.order_by("subscriber_name"))
    form = ReasonForm(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        for bookmark in selected:
            given = OnSubscriber(bookmark.subscriber_name, form.cleaned_data["reason"])
            acted(request, act, given, about=f"{bookmark.subscriber_name}: ")
        return None
    names = {bookmark.subscriber_name for bookmark in selected}
    reports: list[SubscriberReport] = [
        report for report in read_as_shell().reports if report.name in names
    ]
    context: dict[str, Any] = {
        **modeladmin.admin_site.each_context(request),
        "title": f"{act.verb} {len(selected)} subscriber(s)",
        "opts": modeladmin.model._meta,
        "action": name,
        "verb": act.verb,
        "reports": reports,
        "form": form,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, TEMPLATE, context)


retry_now_action = subscriber_action(RETRY_NOW, "retry_now_action")
pause_action = subscriber_action(PAUSE, "pause_action")
resume_action = subscriber_action(RESUME, "resume_action")
