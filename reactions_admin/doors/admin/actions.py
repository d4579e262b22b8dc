"""The operator's actions on the Bookmarks changelist: "Retry now…", "Pause…", "Resume…".

Like ``delete_selected``: the action shows a confirmation page listing the selected
subscribers with their diagnosis and asking for a reason; the confirmation calls the
one handler for each and returns to the changelist with its outcome as a message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from reactions_admin.acts.dismissal.handler import is_storable
from reactions_admin.acts.operations import handler as operate
from reactions_admin.acts.operations.handler import ActionResult
from reactions_admin.errors import ReactionsError
from reactions_admin.reads.overview import SubscriberReport, read_as_shell
from subscribers.models import Bookmark

TEMPLATE = "admin/reactions_admin/subscriber_action.html"

Handler = Callable[..., ActionResult]


class ReasonForm(forms.Form):
    """The operator's reason (recorded in the audit trail)."""

    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text="Why you act; recorded in the audit trail.",
    )


def _run(
    name: str,
    verb: str,
    handler: Handler,
    modeladmin: admin.ModelAdmin[Bookmark],
    request: HttpRequest,
    queryset: QuerySet[Bookmark],
) -> TemplateResponse | None:
    if not all(is_storable(pk) for pk in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)):
        modeladmin.message_user(request, "Select at least one subscriber.", messages.ERROR)
        return None
    selected = list(queryset.order_by("subscriber_name"))
    form = ReasonForm(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        for bookmark in selected:
            try:
                result = handler(
                    bookmark.subscriber_name, form.cleaned_data["reason"], request.user, via="admin"
                )
            except ReactionsError as exc:
                modeladmin.message_user(
                    request,
                    f"{bookmark.subscriber_name}: {exc.detail} ({exc.code})",
                    messages.ERROR,
                )
                continue
            modeladmin.message_user(
                request,
                f"{verb} {result.subscriber_name}: {result.status_before} → {result.status_after}. "
                f"Decision {result.decision_event_id}.",
                messages.SUCCESS,
            )
        return None
    names = {bookmark.subscriber_name for bookmark in selected}
    reports: list[SubscriberReport] = [
        report for report in read_as_shell().reports if report.name in names
    ]
    context: dict[str, Any] = {
        **modeladmin.admin_site.each_context(request),
        "title": f"{verb} {len(selected)} subscriber(s)",
        "opts": modeladmin.model._meta,
        "action": name,
        "verb": verb,
        "reports": reports,
        "form": form,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, TEMPLATE, context)


@admin.action(description="Retry now…", permissions=["operate"])
def retry_now_action(
    modeladmin: admin.ModelAdmin[Bookmark], request: HttpRequest, queryset: QuerySet[Bookmark]
) -> TemplateResponse | None:
    """One immediate attempt at each selected subscriber's failing event (attempts kept)."""
    return _run("retry_now_action", "Retry now", operate.retry_now, modeladmin, request, queryset)


@admin.action(description="Pause…", permissions=["operate"])
def pause_action(
    modeladmin: admin.ModelAdmin[Bookmark], request: HttpRequest, queryset: QuerySet[Bookmark]
) -> TemplateResponse | None:
    """Pause the selected subscribers, with a reason."""
    return _run("pause_action", "Pause", operate.pause, modeladmin, request, queryset)


@admin.action(description="Resume…", permissions=["operate"])
def resume_action(
    modeladmin: admin.ModelAdmin[Bookmark], request: HttpRequest, queryset: QuerySet[Bookmark]
) -> TemplateResponse | None:
    """Resume the selected subscribers, with a reason."""
    return _run("resume_action", "Resume", operate.resume, modeladmin, request, queryset)
