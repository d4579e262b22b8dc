"""A read-only admin page for the events table: append-only data is never edited here."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from eventstore.models import Event
from eventstore.payload import payload_html

#: The operator console's permissions: each lets a staff user read the pages the console
#: links to (events, bookmarks, decisions), as well as the model's own view permission.
OPERATOR_PERMISSIONS = (
    "reactions_admin.view_console",
    "reactions_admin.dismiss_event",
    "reactions_admin.operate_subscriber",
    "reactions_admin.rebuild_projection",
)


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Append-only data (events, decisions), rows the worker or a projection owns
    (bookmarks, read models): shown, never added, changed or deleted from the admin.

    ``also_viewable_with``: permissions that let a user view it besides ``view_<model>``."""

    also_viewable_with: tuple[str, ...] = ()

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        user = request.user
        return super().has_view_permission(request, obj) or any(
            user.has_perm(permission) for permission in self.also_viewable_with
        )

    def has_module_permission(self, request: HttpRequest) -> bool:
        return super().has_module_permission(request) or self.has_view_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    """Browse and search events by id, stream and type; nothing can be added, changed or deleted."""

    also_viewable_with = OPERATOR_PERMISSIONS

    list_display = ("position", "transaction_id", "event_type", "stream_id", "stream_version",
                    "event_id", "recorded_at")  # fmt: skip
    list_filter = ("event_type",)
    search_fields = ("event_id", "stream_id", "event_type")
    ordering = ("-transaction_id", "-position")
    show_full_result_count = False
    fields = ("position", "transaction_id", "event_id", "stream_id", "stream_version",
              "event_type", "recorded_at", "pretty_data", "pretty_metadata")  # fmt: skip
    readonly_fields = fields

    @admin.display(description="data")
    def pretty_data(self, event: Event) -> str:
        # The payload's own key order, short fields first, long ones folded.
        return payload_html(event.data, event.metadata)

    @admin.display(description="metadata")
    def pretty_metadata(self, event: Event) -> str:
        return _pretty(event.metadata)


def _pretty(value: Any) -> str:
    # format_html escapes the JSON text: payloads may hold HTML or script. A payload can be
    # one enormous line: wrap it and scroll inside a box rather than stretch the page.
    return format_html(
        '<pre style="white-space: pre-wrap; overflow-wrap: anywhere; max-height: 40em; '
        'overflow: auto; margin: 0">{}</pre>',
        json.dumps(value, indent=2),
    )
