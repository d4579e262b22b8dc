"""The Bookmarks pages: one row per subscriber, its cursor, lag and health, the horizon
banner, and the operator's actions (dismiss, retry now, pause, resume). Read-only by
hand: a bookmark moves by the worker, or by an audited action, never by editing it.

A stream-ordered reaction's cursor is its intake point; its lag adds the events taken in
and not finished, except those of parked streams, which its status shows apart: it is
*degraded* while streams are parked (how many, the oldest's age, a link to them), with
the ``handle`` calls in flight, and whether intake is paused at its limit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString

from config.options import options
from eventstore.admin import OPERATOR_PERMISSIONS, ReadOnlyAdmin
from eventstore.horizon import horizon_holders
from eventstore.models import Event
from reactions_admin.acts.rebuilds.handler import REBUILD_PERMISSION
from reactions_admin.doors.admin.actions import (
    ActPermissions,
    error_cell,
    pause_action,
    resume_action,
    retry_now_action,
)
from reactions_admin.doors.admin.dismissal import dismiss_event
from reactions_admin.doors.admin.rebuilds import ACTIONS as REBUILD_ACTIONS
from reactions_admin.doors.admin.rebuilds import rebuild_page, rebuild_summary
from reactions_admin.reads import charts
from reactions_admin.reads.charts import lag_chart, rate_text
from reactions_admin.reads.diagnosis import when
from reactions_admin.reads.overview import bookmarks_with_lag
from subscribers import history, sql
from subscribers.models import Bookmark
from subscribers.registry import configured_registry
from subscribers.stream_work import WorkSummary, work_summary

#: A transaction holding an xid longer than this is shown on the bookmarks page.
HORIZON_WARNING_SECONDS = 10.0


@admin.register(Bookmark)
class BookmarkAdmin(ActPermissions, ReadOnlyAdmin):
    """The subscribers' bookmarks. Actions: "Dismiss event…" (``reactions_admin.dismiss_event``),
    "Retry now…", "Pause…", "Resume…" (``reactions_admin.operate_subscriber``), each on
    a confirmation page asking for a reason, the way ``delete_selected`` asks."""

    list_display = (
        "subscriber_name", "kind", "batch_size", "cursor_display", "lag", "trend", "health",
        "attempts", "failing_event", "short_error", "next_retry_at",
    )  # fmt: skip
    list_filter = ("kind", "status")
    search_fields = ("subscriber_name", "last_error")
    readonly_fields = (
        "subscriber_name", "kind", "cursor_display", "lag", "rate", "lag_trend", "health",
        "attempts", "failing_event", "last_error", "last_traceback", "failed_at", "next_retry_at",
        "lease_owner", "lease_expires_at", "created_at", "updated_at", "rebuild",
    )  # fmt: skip
    fields = readonly_fields
    actions = [dismiss_event, retry_now_action, pause_action, resume_action, *REBUILD_ACTIONS]
    also_viewable_with = OPERATOR_PERMISSIONS

    def get_queryset(self, request: HttpRequest) -> QuerySet[Bookmark]:
        # One correlated, capped count per row, in the same query as the page.
        return bookmarks_with_lag(super().get_queryset(request))  # type: ignore[no-any-return]

    def has_rebuild_projection_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(REBUILD_PERMISSION)

    def get_urls(self) -> list[URLPattern]:
        # The rebuild page of a projection (its progress and diff): before the change
        # view's catch-all pattern.
        rebuild = path(
            "<path:object_id>/rebuild/",
            self.admin_site.admin_view(self.rebuild_view),
            name="subscribers_bookmark_rebuild",
        )
        return [rebuild, *super().get_urls()]

    def rebuild_view(self, request: HttpRequest, object_id: str) -> TemplateResponse:
        return rebuild_page(request, object_id, self)

    @admin.display(description="rebuild")
    def rebuild(self, bookmark: Bookmark) -> SafeString | str:
        return rebuild_summary(bookmark)

    @admin.display(description="batch")
    def batch_size(self, bookmark: Bookmark) -> str:
        registry = configured_registry()
        entry = registry.get(bookmark.subscriber_name) if registry else None
        return str(entry.batch_size) if entry else "— (not configured)"

    @admin.display(description="cursor (txid/pos)")
    def cursor_display(self, bookmark: Bookmark) -> str:
        return str(bookmark.cursor)

    # Only the types it handles; for a stream-ordered reaction, plus its unfinished rows of
    # streams that are not parked (parked streams show in its status instead).
    @admin.display(description="lag", ordering="lag_total")
    def lag(self, bookmark: Bookmark) -> str:
        behind = getattr(bookmark, "behind", None)
        if behind is None:
            return "?"
        open_work = int(getattr(bookmark, "open_work", 0) or 0)
        if behind > sql.LAG_CAP:
            return f"{sql.LAG_CAP + open_work}+"
        return str(behind + open_work)

    @admin.display(description="lag trend (1 h)")
    def trend(self, bookmark: Bookmark) -> SafeString:
        return charts.trend(bookmark.subscriber_name)

    @admin.display(description="rate")
    def rate(self, bookmark: Bookmark) -> str:
        return rate_text(history.rate_and_eta(bookmark.subscriber_name))

    @admin.display(description="lag trend")
    def lag_trend(self, bookmark: Bookmark) -> SafeString:
        since = timezone.now() - timedelta(seconds=options().history_retention_seconds)
        return lag_chart(history.samples(bookmark.subscriber_name, since))

    @admin.display(description="failing event")
    def failing_event(self, bookmark: Bookmark) -> str:
        if bookmark.failing_event_id is None:
            return "—"
        event = (
            Event.objects.filter(event_id=bookmark.failing_event_id)
            .only("position", "event_type", "stream_id", "stream_version")
            .first()
        )
        full_id = str(bookmark.failing_event_id)
        if event is None:
            return format_html('<span title="{}">{}…</span>', full_id, full_id[:8])
        label = f"{event.event_type} {event.stream_id}@{event.stream_version} ({full_id[:8]}…)"
        try:
            url = reverse("admin:eventstore_event_change", args=[event.position])
        except NoReverseMatch:
            return format_html('<span title="{}">{}</span>', full_id, label)
        return format_html('<a href="{}" title="{}">{}</a>', url, full_id, label)

    @admin.display(description="status", ordering="status")
    def health(self, bookmark: Bookmark) -> str:
        colour = {"wedged": "#ba2121", "retrying": "#b36b00"}.get(bookmark.status)
        label = bookmark.get_status_display()
        work = _stream_work(bookmark)
        if work is not None:
            return _stream_health(bookmark, work, label)
        if colour is None:
            return label
        return format_html('<strong style="color: {}">{}</strong>', colour, label)

    @admin.display(description="last error")
    def short_error(self, bookmark: Bookmark) -> str:
        return error_cell(bookmark.last_error)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> Any:
        # A transaction left open anywhere on the server stalls every subscriber:
        # name it where the operator is already looking.
        context = {
            "horizon_holders": horizon_holders(min_age_seconds=HORIZON_WARNING_SECONDS),
            "title": "Subscribers: bookmarks, lag and health",
        }
        return super().changelist_view(request, {**context, **(extra_context or {})})


def _stream_work(bookmark: Bookmark) -> WorkSummary | None:
    """The work figures of a stream-ordered reaction (configured so, or with rows left)."""
    if bookmark.kind != Bookmark.Kind.REACTION:
        return None
    registry = configured_registry()
    entry = registry.get(bookmark.subscriber_name) if registry else None
    work = work_summary(bookmark.subscriber_name)
    if (entry is None or not entry.stream_ordered) and work.unfinished == 0:
        return None
    return work


def _parked_link(bookmark: Bookmark, text: str) -> str:
    try:
        url = reverse("admin:reactions_admin_parkedstream_changelist")
    except NoReverseMatch:
        return text
    query = urlencode({"subscriber_name__exact": bookmark.subscriber_name})
    return format_html('<a href="{}?{}">{}</a>', url, query, text)


def _stream_health(bookmark: Bookmark, work: WorkSummary, label: str) -> str:
    """Degraded while streams are parked (how many, the oldest's age), the calls in
    flight, and intake paused at its limit."""
    parts = [format_html("{} in flight", work.in_flight)]
    if bookmark.intake_paused_at is not None:
        parts.append(
            format_html(
                '<strong style="color: #b36b00">intake paused at its limit since {}</strong>',
                bookmark.intake_paused_at.strftime("%H:%M:%S %Z"),
            )
        )
    if work.parked_streams and work.oldest_parked is not None:
        parked = _parked_link(
            bookmark,
            f"{work.parked_streams} parked stream{'s' if work.parked_streams != 1 else ''}",
        )
        return format_html(
            '<strong style="color: #ba2121">Degraded</strong>: {} (oldest parked since {}); {}',
            parked,
            when(work.oldest_parked, timezone.now()),
            format_html_join(", ", "{}", ((part,) for part in parts)),
        )
    return format_html("{}; {}", label, format_html_join(", ", "{}", ((part,) for part in parts)))
