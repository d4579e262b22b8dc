"""The parked-streams page: one row per parked stream of a stream-ordered reaction (its
head event, error, attempts, since when, how many wait behind), and three actions, each
with a confirmation page and a reason, the way ``delete_selected`` asks before it acts:

* "Dismiss the head event…" and "Dismiss the whole stream…" (``reactions_admin.dismiss_event``);
* "Retry the stream now…" (``reactions_admin.operate_subscriber``).

Each selected stream is one act of the one handler every door calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import BigIntegerField, QuerySet
from django.db.models.expressions import RawSQL
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html

from eventstore.admin import ReadOnlyAdmin
from reactions_admin import errors
from reactions_admin.acts.act import Act, OnEvent, OnStream
from reactions_admin.acts.dismissal.handler import DISMISS_EVENT
from reactions_admin.acts.parked_streams.handler import DISMISS_PARKED_STREAM, RETRY_PARKED_STREAM
from reactions_admin.doors.admin.actions import (
    ActPermissions,
    AdminAction,
    admin_action,
    error_cell,
)
from reactions_admin.errors import ReactionsError
from reactions_admin.guards import OPERATE_PERMISSION
from reactions_admin.models import ParkedStream
from reactions_admin.reads.diagnosis import when
from reactions_admin.reads.reactions import VIEW_PERMISSIONS
from reactions_admin.templatetags.console import stamp
from subscribers import sql

TEMPLATE = "admin/reactions_admin/parkedstream/confirm_action.html"

#: The act's input for one selected head row and the operator's reason.
Given = Callable[[ParkedStream, str], Any]


def _on_head(row: ParkedStream, reason: str) -> OnEvent:
    # The head the operator saw, by its event id: if another head took its place since,
    # the dismissal refuses it (not_stream_head) rather than dismiss an unseen event.
    return OnEvent(row.subscriber_name, row.event_id, reason)


def _on_stream(row: ParkedStream, reason: str) -> OnStream:
    return OnStream(row.subscriber_name, row.stream_id, reason)


def stream_action(
    act: Act[Any, Any], name: str, given: Given, *, title: str = "", button: str = ""
) -> AdminAction[ParkedStream]:
    """The parked-streams action ``name`` for ``act``: a confirmation page listing the
    selected streams, with a reason (required when the act refuses a missing one), then
    the act for each selected stream, its outcome as a message."""
    title = title or act.verb
    required = errors.ReasonRequired in act.refusals

    def action(
        modeladmin: admin.ModelAdmin[ParkedStream], request: HttpRequest,
        queryset: QuerySet[ParkedStream],
    ) -> TemplateResponse | None:  # fmt: skip
        rows = list(queryset)
        if not rows:
            modeladmin.message_user(
                request, "None of those streams is parked now.", messages.WARNING
            )
            return None
        reason = str(request.POST.get("reason", ""))
        if "apply" in request.POST and (reason.strip() or not required):
            for row in rows:
                try:
                    result = act(given(row, reason), request.user, via="admin")
                except ReactionsError as exc:
                    modeladmin.message_user(
                        request, f"{row.stream_id}: {exc.detail} ({exc.code})", messages.ERROR
                    )
                else:
                    modeladmin.message_user(request, result.text(), messages.SUCCESS)
            return None
        context: dict[str, Any] = {
            **modeladmin.admin_site.each_context(request),
            "title": f"{title}: are you sure?",
            "opts": modeladmin.model._meta,
            "rows": rows,
            "action": name,
            "button": button or title,
            "reason": reason,
            "reason_required": required,
            "reason_missing": "apply" in request.POST,
            "whole_stream": act is DISMISS_PARKED_STREAM,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, TEMPLATE, context)

    return admin_action(act, name, action, description=f"{title}…")


head = "Dismiss the head event"
dismiss_heads = stream_action(DISMISS_EVENT, "dismiss_heads", _on_head, title=head)
dismiss_streams = stream_action(
    DISMISS_PARKED_STREAM, "dismiss_streams", _on_stream, button="Dismiss every event"
)
retry_streams = stream_action(RETRY_PARKED_STREAM, "retry_streams", _on_stream, button="Retry now")


@admin.register(ParkedStream)
class ParkedStreamAdmin(ActPermissions, ReadOnlyAdmin):
    """Parked streams, read-only (never added, changed or deleted here): they change only
    through the audited actions. Viewing needs a permission to read reactions (or to
    operate them), not the model's own."""

    list_display = ("reaction", "stream_id", "head_event", "short_error", "attempts",
                    "parked_since", "last_parked", "waiting")  # fmt: skip
    list_display_links = None
    # The longest stuck first: since the head first parked (a failed retry parks it again).
    ordering = ("first_parked_at", "stream_id")
    list_filter = ("subscriber_name",)
    search_fields = ("stream_id", "last_error")
    actions = [dismiss_heads, dismiss_streams, retry_streams]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ParkedStream]:
        parked: QuerySet[ParkedStream] = super().get_queryset(request)
        return parked.annotate(
            behind=RawSQL(sql.WAITING_BEHIND_HEAD, (), output_field=BigIntegerField())
        )

    @admin.display(description="reaction", ordering="subscriber_name")
    def reaction(self, row: ParkedStream) -> str:
        return row.subscriber_name

    @admin.display(description="head event")
    def head_event(self, row: ParkedStream) -> str:
        label = f"{row.event_type} ({str(row.event_id)[:8]}…)"
        try:
            url = reverse("admin:eventstore_event_change", args=[row.position])
        except NoReverseMatch:
            return format_html('<span title="{}">{}</span>', row.event_id, label)
        return format_html('<a href="{}" title="{}">{}</a>', url, row.event_id, label)

    @admin.display(description="error")
    def short_error(self, row: ParkedStream) -> str:
        return error_cell(row.last_error)

    @admin.display(description="parked since", ordering="first_parked_at")
    def parked_since(self, row: ParkedStream) -> str:
        return when(row.parked_since, timezone.now())

    @admin.display(description="last parked", ordering="parked_at")
    def last_parked(self, row: ParkedStream) -> str:
        return stamp(row.parked_at)

    @admin.display(description="waiting behind", ordering="behind")
    def waiting(self, row: ParkedStream) -> int:
        return int(getattr(row, "behind", 0))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        user = request.user
        return any(user.has_perm(p) for p in (*VIEW_PERMISSIONS, OPERATE_PERMISSION))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)
