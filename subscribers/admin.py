"""Bookmarks in the admin: one row per subscriber, its cursor, lag and health. Read-only:
a bookmark moves by the worker, or by an audited dismissal — never by hand here."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from config.options import options
from eventstore.horizon import horizon_holders
from eventstore.models import Event
from reactions_admin.charts import lag_chart, rate_text, sparkline
from subscribers import history, sql
from subscribers.models import Bookmark
from subscribers.registry import configured_registry

#: A transaction holding an xid longer than this is shown on the bookmarks page.
HORIZON_WARNING_SECONDS = 10.0
#: The sparkline in the list covers this much history; the chart on a bookmark's page
#: covers everything kept (history_retention_seconds).
SPARKLINE_SECONDS = 3600.0


def _handled_types() -> str:
    """Each configured subscriber with event_types -> those types, as JSON (for ``sql.LAG``)."""
    registry = configured_registry()
    if registry is None:
        return "{}"
    return json.dumps({e.name: list(e.event_types) for e in registry if e.event_types is not None})


@admin.register(Bookmark)
class BookmarkAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "subscriber_name", "kind", "batch_size", "cursor_display", "lag", "trend", "health",
        "attempts", "failing_event", "short_error", "next_retry_at",
    )  # fmt: skip
    list_filter = ("kind", "status")
    search_fields = ("subscriber_name", "last_error")
    readonly_fields = (
        "subscriber_name", "kind", "cursor_display", "lag", "rate", "lag_trend", "status",
        "attempts", "failing_event", "last_error", "last_traceback", "failed_at", "next_retry_at",
        "lease_owner", "lease_expires_at", "created_at", "updated_at",
    )  # fmt: skip
    fields = readonly_fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Bookmark]:
        # One correlated, capped count per row, in the same query as the page.
        bookmarks: QuerySet[Bookmark] = super().get_queryset(request)
        types = _handled_types()
        return bookmarks.annotate(behind=RawSQL(sql.LAG, (types, types)))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="batch")
    def batch_size(self, bookmark: Bookmark) -> str:
        registry = configured_registry()
        entry = registry.get(bookmark.subscriber_name) if registry else None
        return str(entry.batch_size) if entry else "— (not configured)"

    @admin.display(description="cursor (txid/pos)")
    def cursor_display(self, bookmark: Bookmark) -> str:
        return str(bookmark.cursor)

    @admin.display(description="lag", ordering="behind")  # only the types it handles
    def lag(self, bookmark: Bookmark) -> str:
        behind = getattr(bookmark, "behind", None)
        if behind is None:
            return "?"
        return f"{sql.LAG_CAP}+" if behind > sql.LAG_CAP else str(behind)

    @admin.display(description="lag trend (1 h)")
    def trend(self, bookmark: Bookmark) -> SafeString:
        since = timezone.now() - timedelta(seconds=SPARKLINE_SECONDS)
        taken = history.samples(bookmark.subscriber_name, since)
        estimate = history.estimate(bookmark.subscriber_name, _last_minute(taken))
        return format_html(
            '{}<br><small class="lag-rate">{}</small>', sparkline(taken), rate_text(estimate)
        )

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
        if colour is None:
            return label
        return format_html('<strong style="color: {}">{}</strong>', colour, label)

    @admin.display(description="last error")
    def short_error(self, bookmark: Bookmark) -> str:
        text = bookmark.last_error
        if len(text) <= 90:
            return text
        return format_html('<span title="{}">{}…</span>', text, text[:89])

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> Any:
        # A transaction left open anywhere on the server stalls every subscriber:
        # name it where the operator is already looking.
        context = {"horizon_holders": horizon_holders(min_age_seconds=HORIZON_WARNING_SECONDS)}
        return super().changelist_view(request, {**context, **(extra_context or {})})


def _last_minute(taken: list[history.Sample]) -> list[history.Sample]:
    """The samples of the rate window, out of the hour the sparkline already read."""
    since = timezone.now() - timedelta(seconds=history.RATE_WINDOW_SECONDS)
    return [s for s in taken if s.at >= since]
