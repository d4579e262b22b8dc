"""The "Dismiss event…" admin action on the bookmarks changelist, and its form page.

The first POST (from the changelist) shows the form; "Preview" re-renders it
for another event id; "Dismiss" calls the handler and returns to the changelist
with the outcome as an admin message.
"""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from eventstore.payload import payload_html
from reactions_admin.acts.act import OnEvent
from reactions_admin.acts.dismissal.handler import DISMISS_EVENT
from reactions_admin.acts.dismissal.preview import DismissalPreview, preview_dismissal
from reactions_admin.doors.admin.actions import permission_name, selection_is_storable
from reactions_admin.errors import ReactionsError
from subscribers.models import Bookmark

TEMPLATE = "admin/reactions_admin/dismiss_event.html"


class DismissEventForm(forms.Form):
    """The event to dismiss (defaults to the failing one) and the operator's reason."""

    event_id = forms.UUIDField(label="Event id", widget=forms.TextInput(attrs={"size": 40}))
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        help_text="Why this event is dismissed; recorded in the audit trail.",
    )


@admin.action(description=f"{DISMISS_EVENT.verb}…", permissions=[permission_name(DISMISS_EVENT)])
def dismiss_event(
    modeladmin: admin.ModelAdmin[Bookmark], request: HttpRequest, queryset: QuerySet[Bookmark]
) -> TemplateResponse | None:
    """Dismiss an event in exactly one selected reaction (through the dismissal handler)."""
    bookmarks = list(queryset[:2]) if selection_is_storable(request) else []
    if len(bookmarks) != 1:
        modeladmin.message_user(request, "Select exactly one reaction.", messages.ERROR)
        return None
    bookmark = bookmarks[0]
    if "apply" in request.POST:
        form = DismissEventForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            given = OnEvent(bookmark.subscriber_name, data["event_id"], data["reason"])
            try:
                result = DISMISS_EVENT(given, request.user, via="admin")
            except ReactionsError as exc:
                modeladmin.message_user(request, f"{exc.detail} ({exc.code})", messages.ERROR)
                return None
            modeladmin.message_user(request, result.text(), messages.SUCCESS)
            return None
    elif "preview" in request.POST:
        form = DismissEventForm(request.POST)
    else:
        form = DismissEventForm(initial={"event_id": bookmark.failing_event_id})
    return _render(modeladmin, request, bookmark, form)


def _render(
    modeladmin: admin.ModelAdmin[Bookmark],
    request: HttpRequest,
    bookmark: Bookmark,
    form: DismissEventForm,
) -> TemplateResponse | None:
    raw_id = form.data.get("event_id") if form.is_bound else form.initial.get("event_id")
    preview: DismissalPreview | None = None
    problem = ""
    if raw_id:
        try:
            preview = preview_dismissal(bookmark, uuid.UUID(str(raw_id)), request.user)
        except ValueError:
            problem = "That event id is not a UUID."
        except ReactionsError as exc:
            if exc.status in (401, 403, 503):
                modeladmin.message_user(request, f"{exc.detail} ({exc.code})", messages.ERROR)
                return None
            problem = exc.detail
    else:
        problem = "This reaction has no failing event: enter the id of the event to dismiss."
    context: dict[str, Any] = {
        **modeladmin.admin_site.each_context(request),
        "title": f"Dismiss an event in {bookmark.subscriber_name}",
        "opts": modeladmin.model._meta,
        "bookmark": bookmark,
        "form": form,
        "preview": preview,
        **_payload_preview(preview),
        "problem": problem,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, TEMPLATE, context)


def _payload_preview(preview: DismissalPreview | None) -> dict[str, Any]:
    # The payload's own key order, short fields first, long ones folded (one click).
    if preview is None:
        return {"payload": ""}
    return {"payload": payload_html(preview.event.data, preview.event.metadata)}
