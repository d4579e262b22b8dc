"""API tokens: created once (the secret is shown a single time), stored as a SHA-256 digest.

Creating and revoking a token are operator acts: each is audited as a decision
(context ``ApiToken``, choice ``TokenCreated`` or ``TokenRevoked``, the actor and the
token's prefix, never its secret) appended in the transaction that writes the token.

``revoke`` is the only way a token is revoked: the database refuses to commit a
``revoked_at`` set without its ``TokenRevoked`` decision, and to delete a live token.
Deleting a user therefore revokes the user's live tokens first, through ``revoke``, in
the deletion's transaction (``revoke_tokens_of_deleted_user``).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from eventstore.decisions import DecisionActor
from reactions_admin.acts.decision import record
from reactions_admin.acts.operations.decider import Audit
from reactions_admin.models import ApiToken

#: Every Eventdesk token starts with this, so a leaked one is recognisable in logs and scanners.
TOKEN_MARKER = "edk_"
PREFIX_LENGTH = len(TOKEN_MARKER) + 8
#: How fresh ``ApiToken.last_used_at`` is kept (it is written at most this often).
LAST_USED_RESOLUTION = timedelta(minutes=1)
#: Every token decision is appended to this stream (one audit trail, in order).
TOKEN_DECISION_STREAM = "decisions-api-tokens"
TOKEN_CONTEXT = "ApiToken"


@dataclass(frozen=True)
class IssuedToken:
    """A freshly created token: ``secret`` exists only here, never in the database."""

    token: ApiToken
    secret: str


def digest_of(secret: str) -> str:
    """The stored form of a secret. A plain SHA-256 suffices: the secret has 256 bits of entropy."""
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token(
    user: User, name: str = "", *, actor: DecisionActor = None, via: str = "code"
) -> IssuedToken:
    """Create a token for ``user`` and return its secret (the only time it is known).

    Audited as ``TokenCreated`` by ``actor`` (``None``: the operating-system account
    running the code), through the door ``via``."""
    secret = TOKEN_MARKER + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name, prefix=secret[:PREFIX_LENGTH], digest=digest_of(secret)
        )
        _register(token, "TokenCreated", actor, via, uuid.uuid4())
    return IssuedToken(token=token, secret=secret)


def _register(
    token: ApiToken, choice: str, actor: DecisionActor, via: str, correlation_id: uuid.UUID
) -> None:
    owner: Any = token.user
    inputs = {
        # The database checks a revocation against this (the api_token_revocation_audited
        # trigger, in reactions_admin's migration).
        "token_id": token.pk,
        "token_prefix": token.prefix,
        "token_name": token.name,
        "token_owner": {"username": owner.get_username(), "id": owner.pk},
    }
    audit = Audit(TOKEN_CONTEXT, choice, "", inputs)
    record(TOKEN_DECISION_STREAM, audit, actor, via, correlation_id=correlation_id)


def user_for_token(secret: str) -> User | None:
    """The active user a live token belongs to, or None (unknown, revoked, inactive user)."""
    if not secret.startswith(TOKEN_MARKER):
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=digest_of(secret), revoked_at__isnull=True)
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    # Recorded at most once a minute: a Prometheus scrape every few seconds would otherwise
    # write on every read.
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


def bearer_secret(authorization: str | None) -> str | None:
    """The secret of an ``Authorization: Bearer <secret>`` header value, or None."""
    if not authorization:
        return None
    scheme, _, secret = authorization.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    return secret.strip()


def revoke_tokens(
    *,
    prefix: str | None = None,
    username: str | None = None,
    actor: DecisionActor = None,
    via: str = "code",
) -> int:
    """Revoke live tokens by prefix (or the whole secret), or every live token of a user.

    Returns how many were revoked. See ``revoke``."""
    tokens = ApiToken.objects.all()
    if prefix is not None:
        tokens = tokens.filter(prefix=prefix[:PREFIX_LENGTH])
    if username is not None:
        tokens = tokens.filter(user__username=username)
    return revoke(tokens, actor=actor, via=via)


def revoke(tokens: QuerySet[ApiToken], *, actor: DecisionActor = None, via: str = "code") -> int:
    """Revoke the live tokens among ``tokens``; returns how many. A revoked token is
    refused from then on, for good. Each is audited as ``TokenRevoked`` by ``actor``, in
    the transaction that revokes it; a token already revoked is left as it is."""
    correlation_id = uuid.uuid4()
    with transaction.atomic():
        # Locked, then filtered again on the locked row: of two concurrent revocations
        # of one token, only the first revokes it and audits it.
        live = list(
            tokens.filter(revoked_at__isnull=True)
            .select_for_update(of=("self",))
            .select_related("user")
        )
        now = timezone.now()
        ApiToken.objects.filter(pk__in=[token.pk for token in live]).update(revoked_at=now)
        for token in live:
            _register(token, "TokenRevoked", actor, via, correlation_id)
    return len(live)


def revoke_tokens_of_deleted_user(sender: type[Any], instance: Any, **_: Any) -> None:
    """``pre_delete`` of the user model: revoke the user's live tokens, audited, in the
    transaction that deletes the user (their rows then go with it, as revoked ones). The
    decisions name no operator (Django's deletion does not say who): the admin's own log
    entry does; ``via`` says why."""
    revoke(ApiToken.objects.filter(user=instance), actor=None, via="user_deleted")
