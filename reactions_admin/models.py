"""The operator slice's models: API tokens, and the Decision audit events (a proxy over Event)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from django.conf import settings
from django.db import IntegrityError, models

from eventstore.decisions import DECISION_EVENT_TYPE
from eventstore.models import Event
from reactions_admin.errors import RevocationFinal, RevocationNotAudited
from subscribers.models import ReactionWork


class DecisionManager(models.Manager["Decision"]):
    def get_queryset(self) -> models.QuerySet[Decision]:
        return super().get_queryset().filter(event_type=DECISION_EVENT_TYPE)


class Decision(Event):
    """A ``DecisionRegistered`` event, read through the audit page.

    Its ``Meta.permissions`` declare ``reactions_admin.dismiss_event``, the one
    permission every door checks before an event is dismissed, and
    ``reactions_admin.operate_subscriber``, which operating a subscriber needs (retrying
    a parked stream now; the console's retry, pause and resume).
    """

    objects: ClassVar[DecisionManager] = DecisionManager()

    class Meta:
        proxy = True
        verbose_name = "decision"
        ordering = ("-transaction_id", "-position")
        permissions = [
            ("dismiss_event", "Can dismiss an event in a reaction"),
            ("operate_subscriber", "Can operate a subscriber (retry a parked stream now)"),
            # Read-only operators: the console's home page, workers, failures, and every
            # reading door (GET /agent/subscribers, diagnose_subscriber, manage.py subscribers).
            ("view_console", "Can view the operator console"),
            # Projection rebuilds (issue 17): start, swap, cancel, roll back.
            ("rebuild_projection", "Can rebuild a projection (start, swap, cancel, roll back)"),
        ]

    @property
    def inputs(self) -> dict[str, Any]:
        inputs = self.data.get("inputs") if isinstance(self.data, dict) else None
        return inputs if isinstance(inputs, dict) else {}

    @property
    def actor_name(self) -> str:
        actor = self.data.get("actor") if isinstance(self.data, dict) else None
        if not isinstance(actor, dict):
            return ""
        if actor.get("username") is None and actor.get("os_user"):
            return f"{actor['os_user']} (shell)"  # a command run without --as
        return str(actor.get("username") or "")

    @property
    def context(self) -> str:
        return str(self.data.get("context", "")) if isinstance(self.data, dict) else ""

    @property
    def choice(self) -> str:
        return str(self.data.get("choice", "")) if isinstance(self.data, dict) else ""


class ParkedStreamManager(models.Manager["ParkedStream"]):
    def get_queryset(self) -> models.QuerySet[ParkedStream]:
        return super().get_queryset().filter(parked_at__isnull=False)


class ParkedStream(ReactionWork):
    """The head row of a parked stream of a stream-ordered reaction (a proxy over
    ``reaction_work`` rows whose attempts ran out), read through the parked-streams page."""

    objects: ClassVar[ParkedStreamManager] = ParkedStreamManager()

    class Meta:
        proxy = True
        verbose_name = "parked stream"
        ordering = ("parked_at", "stream_id")


#: The name the database gives its refusal to clear or change ``revoked_at`` once set
#: (the trigger REVOCATION_FINAL of migration 0001_squashed_0006).
REVOCATION_FINAL_CONSTRAINT = "api_token_revocation_final"
#: ... and its refusal to revoke a token without its decision, or to delete a live one
#: (the triggers REVOCATION_AUDITED of migration 0001_squashed_0006).
REVOCATION_AUDITED_CONSTRAINT = "api_token_revocation_audited"


@contextmanager
def _revocation_is_final() -> Iterator[None]:
    """Turn the database's refusals about ``revoked_at`` into ``RevocationFinal`` (bringing
    a revoked token back) or ``RevocationNotAudited`` (revoking or deleting a live token
    other than through ``reactions_admin.acts.tokens``; the revocation check runs at the
    commit, so inside an outer ``atomic()`` it is raised where that block commits)."""
    try:
        yield
    except IntegrityError as exc:
        diag = getattr(exc.__cause__, "diag", None)
        constraint = getattr(diag, "constraint_name", None)
        message = str(getattr(diag, "message_primary", exc))
        if constraint == REVOCATION_FINAL_CONSTRAINT:
            raise RevocationFinal(message) from exc
        if constraint == REVOCATION_AUDITED_CONSTRAINT:
            raise RevocationNotAudited(message) from exc
        raise


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def update(self, **kwargs: Any) -> int:
        """``QuerySet.update``; raises ``RevocationFinal`` if it would clear or change
        the ``revoked_at`` of a revoked token (the database refuses it)."""
        with _revocation_is_final():
            return super().update(**kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        """``QuerySet.delete``; raises ``RevocationNotAudited`` if a token is still live."""
        with _revocation_is_final():
            return super().delete()


class ApiToken(models.Model):
    """A per-user bearer token. Only the SHA-256 of the secret is stored; the
    prefix identifies the token in listings and for revocation.

    Revocation is final: once ``revoked_at`` is set, the database refuses to clear or
    change it (a trigger), whatever the path (this model, a queryset, raw SQL); through
    the ORM the refusal is ``RevocationFinal``. Create and revoke tokens with
    ``reactions_admin.acts.tokens.handler``, which audits each act."""

    objects: ClassVar[models.Manager[ApiToken]] = models.Manager.from_queryset(ApiTokenQuerySet)()

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

    def save(self, *args: Any, **kwargs: Any) -> None:
        """``Model.save``; raises ``RevocationFinal`` if it would bring a revoked token back."""
        with _revocation_is_final():
            super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        """``Model.delete``; raises ``RevocationNotAudited`` if the token is still live."""
        with _revocation_is_final():
            return super().delete(*args, **kwargs)
