"""Admin pages of the operator surface: decisions (read-only audit), API tokens, and
the Bookmarks pages (``admin_bookmarks``: the changelist, its horizon banner and the
operator's actions)."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from eventstore.admin import OPERATOR_PERMISSIONS, ReadOnlyAdmin
from reactions_admin.acts.tokens.handler import revoke
from reactions_admin.doors.admin import (
    bookmarks,  # noqa: F401  (registers the Bookmarks pages)
    parked_streams,  # noqa: F401  (registers the parked-streams page)
)
from reactions_admin.models import ApiToken, Decision

# The console's tables (subscribers, bookmarks, parked streams) are wide: the admin's
# navigation sidebar would take a quarter of the screen from them. The home page links
# everything the sidebar did.
admin.site.enable_nav_sidebar = False
admin.site.site_header = "Eventdesk"
admin.site.site_title = "Eventdesk"
admin.site.index_title = "Operator console"


class _DataKeyFilter(admin.SimpleListFilter):
    """Filter decisions on a top-level key of their data (``context``, ``choice``): the
    choices are the values recorded so far."""

    key: ClassVar[str]

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]
    ) -> list[tuple[str, str]]:
        values = (
            model_admin.get_queryset(request)
            .order_by()
            .values_list(f"data__{self.key}", flat=True)
            .distinct()
        )
        return [(str(value), str(value)) for value in sorted(v for v in values if v)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(**{f"data__{self.key}": value}) if value else queryset


class ContextFilter(_DataKeyFilter):
    title, parameter_name, key = "context", "context", "context"


class ChoiceFilter(_DataKeyFilter):
    title, parameter_name, key = "choice", "choice", "choice"


class ActorFilter(_DataKeyFilter):
    title, parameter_name, key = "actor", "actor", "actor__username"


class SubscriberFilter(admin.SimpleListFilter):
    """Decisions about one subscriber (a dismissal names its ``reaction``; the console's
    actions name their ``subscriber``)."""

    title, parameter_name = "subscriber", "subscriber"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]
    ) -> list[tuple[str, str]]:
        names: set[str] = set()
        for key in ("reaction", "subscriber"):
            values = (
                model_admin.get_queryset(request)
                .order_by()
                .values_list(f"data__inputs__{key}", flat=True)
                .distinct()
            )
            names.update(str(value) for value in values if value)
        return [(name, name) for name in sorted(names)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        return queryset.filter(Q(data__inputs__reaction=value) | Q(data__inputs__subscriber=value))


#: The position of the event a decision acted on (its ``inputs.event_id``), for the link:
#: one correlated lookup per row on the unique event_id index, in the page's own query.
ACTED_ON_POSITION = """
CASE WHEN events.data -> 'inputs' ->> 'event_id' ~ '^[0-9a-fA-F-]{36}$'
     THEN (SELECT acted.position FROM events AS acted
           WHERE acted.event_id = (events.data -> 'inputs' ->> 'event_id')::uuid)
END
"""


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    """The audit trail: who decided what (a dismissal, an API token created or revoked),
    when and why."""

    list_display = ("recorded_at", "actor", "context", "choice", "subject", "short_reason",
                    "via")  # fmt: skip
    list_filter = (
        ContextFilter, ChoiceFilter, SubscriberFilter, ActorFilter,
        ("recorded_at", admin.DateFieldListFilter),
    )  # fmt: skip
    date_hierarchy = "recorded_at"
    search_fields = ("data__reason", "data__inputs__reaction", "data__actor__username",
                     "data__inputs__event_id", "data__inputs__token_prefix")  # fmt: skip
    fields = ("recorded_at", "actor", "context", "choice", "reaction", "dismissed_event",
              "token", "reason", "cursors", "via", "event_id", "stream_id",
              "stream_version")  # fmt: skip
    readonly_fields = fields
    show_full_result_count = False
    # Every operator reads the audit trail: viewers, dismissers and operators alike.
    also_viewable_with = OPERATOR_PERMISSIONS

    @admin.display(description="who")
    def actor(self, decision: Decision) -> str:
        return decision.actor_name

    @admin.display(description="context")
    def context(self, decision: Decision) -> str:
        return decision.context

    @admin.display(description="choice")
    def choice(self, decision: Decision) -> str:
        return decision.choice

    def get_queryset(self, request: HttpRequest) -> QuerySet[Decision]:
        decisions: QuerySet[Decision] = super().get_queryset(request)
        return decisions.annotate(acted_on=RawSQL(ACTED_ON_POSITION, ()))

    @admin.display(description="about")
    def subject(self, decision: Decision) -> str:
        """What the decision was about: the subscriber and the event it acted on (a link
        to that event), or the API token."""
        if self.token(decision):
            return f"token {self.token(decision)}… of {self.token_owner(decision)}"
        subscriber = self.reaction(decision)
        event = self.dismissed_event(decision)
        if not event:
            return subscriber
        position = getattr(decision, "acted_on", None)
        label = f"{subscriber}: {event}" if subscriber else event
        if position is None:
            return label
        url = reverse("admin:eventstore_event_change", args=[position])
        return format_html('<a href="{}" title="the event it acted on">{}</a>', url, label)

    @admin.display(description="API token")
    def token(self, decision: Decision) -> str:
        return str(decision.inputs.get("token_prefix", ""))

    def token_owner(self, decision: Decision) -> str:
        owner = decision.inputs.get("token_owner")
        return str(owner.get("username", "")) if isinstance(owner, dict) else ""

    @admin.display(description="subscriber")
    def reaction(self, decision: Decision) -> str:
        return str(decision.inputs.get("reaction") or decision.inputs.get("subscriber") or "")

    @admin.display(description="event acted on")
    def dismissed_event(self, decision: Decision) -> str:
        return str(decision.inputs.get("event_id", ""))

    @admin.display(description="reason")
    def reason(self, decision: Decision) -> str:
        return str(decision.data.get("reason", ""))

    @admin.display(description="reason")
    def short_reason(self, decision: Decision) -> str:
        text = self.reason(decision)
        return text if len(text) <= 80 else text[:79] + "…"

    @admin.display(description="cursor before → after")
    def cursors(self, decision: Decision) -> str:
        if "cursor_before" not in decision.inputs:
            return ""
        before, after = (
            decision.inputs.get("cursor_before", {}),
            decision.inputs.get("cursor_after", {}),
        )
        passed = decision.inputs.get("events_passed_over")
        return (
            f"{before.get('transaction_id')}/{before.get('position')} → "
            f"{after.get('transaction_id')}/{after.get('position')} ({passed} passed over)"
        )

    @admin.display(description="via")
    def via(self, decision: Decision) -> str:
        return str(decision.metadata.get("via", ""))


@admin.action(description="Revoke selected tokens (for good)", permissions=["change"])
def revoke_selected(
    modeladmin: admin.ModelAdmin[ApiToken], request: HttpRequest, queryset: QuerySet[ApiToken]
) -> None:
    count = revoke(queryset, actor=request.user, via="admin")
    modeladmin.message_user(request, f"Revoked {count} token(s).", messages.SUCCESS)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Tokens by prefix and owner. Secrets are never shown (only their digest is stored);
    create one with ``manage.py create_api_token USERNAME``.

    Revocation is final: ``revoked_at`` is read-only here (the database refuses to clear
    it anyway), and a token is revoked only by the audited action. Tokens are not deleted
    from here either: a revoked one stays, as the record of what was revoked."""

    list_display = ("prefix", "user", "name", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("prefix", "user__username", "name")
    fields = ("prefix", "user", "name", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "user", "created_at", "last_used_at", "revoked_at")
    actions = [revoke_selected]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
