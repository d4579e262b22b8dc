"""The operator slice's models: API tokens, and the Decision audit events (a proxy over Event)."""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.db import models

from eventstore.models import Event

#: The event type of every audited decision (a dismissal is one kind).
DECISION_EVENT_TYPE = "DecisionRegistered"


class DecisionManager(models.Manager["Decision"]):
    def get_queryset(self) -> models.QuerySet[Decision]:
        return super().get_queryset().filter(event_type=DECISION_EVENT_TYPE)


class Decision(Event):
    """A ``DecisionRegistered`` event, read through the audit page.

    Its ``Meta.permissions`` declare ``reactions_admin.dismiss_event``: the one
    permission every door checks before an event is dismissed.
    """

    objects: ClassVar[DecisionManager] = DecisionManager()

    class Meta:
        proxy = True
        verbose_name = "decision"
        ordering = ("-transaction_id", "-position")
        permissions = [("dismiss_event", "Can dismiss an event in a reaction")]

    @property
    def inputs(self) -> dict[str, Any]:
        inputs = self.data.get("inputs") if isinstance(self.data, dict) else None
        return inputs if isinstance(inputs, dict) else {}

    @property
    def actor_name(self) -> str:
        actor = self.data.get("actor") if isinstance(self.data, dict) else None
        return str(actor.get("username", "")) if isinstance(actor, dict) else ""


class ApiToken(models.Model):
    """A per-user bearer token. Only the SHA-256 of the secret is stored; the
    prefix identifies the token in listings and for revocation."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, blank=True, default="")
    prefix = models.CharField(max_length=16, db_index=True, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API token"
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
