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
from django.utils.html import format_html

from reactions_admin.acts.dismissal.handler import DISMISS_PERMISSION, dismiss_event_in_reaction
from reactions_admin.acts.parked_streams.handler import (
    OPERATE_PERMISSION,
    dismiss_parked_stream,
    retry_parked_stream,
)
from reactions_admin.errors import ReactionsError
from reactions_admin.models import ParkedStream
from reactions_admin.reads.reactions import VIEW_PERMISSIONS
from subscribers import sql

TEMPLATE = "admin/reactions_admin/parkedstream/confirm_action.html"

#: What one act does to one selected head row; returns the message on success.
Act = Callable[[ParkedStream, str, Any], str]


def _dismiss_head(row: ParkedStream, reason: str, user: Any) -> str:
    result = dismiss_event_in_reaction(row.subscriber_name, row.event_id, reason, user, via="admin")
    return (
        f"Dismissed event {result.event_id}, the head of stream {row.stream_id!r} in "
        f"{row.subscriber_name}; the next event of the stream runs. "
        f"Decision {result.decision_event_id}."
    )


def _dismiss_stream(row: ParkedStream, reason: str, user: Any) -> str:
    result = dismiss_parked_stream(row.subscriber_name, row.stream_id, reason, user, via="admin")
    return (
        f"Dismissed stream {row.stream_id!r} in {row.subscriber_name}: "
        f"{len(result.dismissed)} event(s), one decision each."
    )


def _retry_stream(row: ParkedStream, reason: str, user: Any) -> str:
    result = retry_parked_stream(
        row.subscriber_name, row.stream_id, user, reason=reason, via="admin"
    )
    return (
        f"Retrying stream {row.stream_id!r} in {row.subscriber_name} now (event "
        f"{result.event_id}, attempt {result.attempts + 1}); {result.waiting} event(s) follow."
    )


#: action name -> (title, button, whether a reason is required, the act)
ACTS: dict[str, tuple[str, str, bool, Act]] = {
    "dismiss_heads": ("Dismiss the head event", "Dismiss the head event", True, _dismiss_head),
    "dismiss_streams": ("Dismiss the whole stream", "Dismiss every event", True, _dismiss_stream),
    "retry_streams": ("Retry the stream now", "Retry now", False, _retry_stream),
}


def _confirm_then(
    name: str, modeladmin: admin.ModelAdmin[ParkedStream], request: HttpRequest,
    queryset: QuerySet[ParkedStream],
) -> TemplateResponse | None:  # fmt: skip
    """The confirmation page with a reason; on "apply", the act for each selected stream."""
    title, button, required, act = ACTS[name]
    rows = list(queryset)
    if not rows:
        modeladmin.message_user(request, "None of those streams is parked now.", messages.WARNING)
        return None
    reason = str(request.POST.get("reason", ""))
    if "apply" in request.POST and (reason.strip() or not required):
        for row in rows:
            try:
                modeladmin.message_user(request, act(row, reason, request.user), messages.SUCCESS)
            except ReactionsError as exc:
                modeladmin.message_user(
                    request, f"{row.stream_id}: {exc.detail} ({exc.code})", messages.ERROR
                )
        return None
    context: dict[str, Any] = {
        **modeladmin.admin_site.each_context(request),
        "title": f"{title}: are you sure?",
        "opts": modeladmin.model._meta,
        "rows": rows,
        "action": name,
        "button": button,
        "reason": reason,
        "reason_required": required,
        "reason_missing": "apply" in request.POST,
        "whole_stream": name == "dismiss_streams",
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, TEMPLATE, context)


@admin.action(description="Dismiss the head event…", permissions=["dismiss"])
def dismiss_heads(
    modeladmin: admin.ModelAdmin[ParkedStream], request: HttpRequest,
    queryset: QuerySet[ParkedStream],
) -> TemplateResponse | None:  # fmt: skip
    """Dismiss the head event of each selected parked stream, with a reason."""
    return _confirm_then("dismiss_heads", modeladmin, request, queryset)


@admin.action(description="Dismiss the whole stream…", permissions=["dismiss"])
def dismiss_streams(
    modeladmin: admin.ModelAdmin[ParkedStream], request: HttpRequest,
    queryset: QuerySet[ParkedStream],
) -> TemplateResponse | None:  # fmt: skip
    """Dismiss every event of each selected parked stream, with a reason."""
    return _confirm_then("dismiss_streams", modeladmin, request, queryset)


@admin.action(description="Retry the stream now…", permissions=["operate"])
def retry_streams(
    modeladmin: admin.ModelAdmin[ParkedStream], request: HttpRequest,
    queryset: QuerySet[ParkedStream],
) -> TemplateResponse | None:  # fmt: skip
    """Run the head of each selected parked stream again now."""
    return _confirm_then("retry_streams", modeladmin, request, queryset)


@admin.register(ParkedStream)
class ParkedStreamAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Parked streams, read-only: they change only through the audited actions."""

    list_display = ("reaction", "stream_id", "head_event", "short_error", "attempts",
                    "first_parked_at", "parked_at", "waiting")  # fmt: skip
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
        text = row.last_error
        if len(text) <= 90:
            return text
        return format_html('<span title="{}">{}…</span>', text, text[:89])

    @admin.display(description="waiting behind", ordering="behind")
    def waiting(self, row: ParkedStream) -> int:
        return int(getattr(row, "behind", 0))

    def has_dismiss_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(DISMISS_PERMISSION)

    def has_operate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(OPERATE_PERMISSION)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        user = request.user
        return any(user.has_perm(p) for p in (*VIEW_PERMISSIONS, OPERATE_PERMISSION))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
