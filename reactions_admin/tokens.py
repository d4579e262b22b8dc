"""API tokens: created once (the secret is shown a single time), stored as a SHA-256 digest."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.utils import timezone

from reactions_admin.models import ApiToken

#: Every Eventdesk token starts with this, so a leaked one is recognisable in logs and scanners.
TOKEN_MARKER = "edk_"
PREFIX_LENGTH = len(TOKEN_MARKER) + 8


@dataclass(frozen=True)
class IssuedToken:
    """A freshly created token: ``secret`` exists only here, never in the database."""

    token: ApiToken
    secret: str


def digest_of(secret: str) -> str:
    """The stored form of a secret. A plain SHA-256 suffices: the secret has 256 bits of entropy."""
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token(user: User, name: str = "") -> IssuedToken:
    """Create a token for ``user`` and return its secret (the only time it is known)."""
    secret = TOKEN_MARKER + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, prefix=secret[:PREFIX_LENGTH], digest=digest_of(secret)
    )
    return IssuedToken(token=token, secret=secret)


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
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token.user


def bearer_secret(authorization: str | None) -> str | None:
    """The secret of an ``Authorization: Bearer <secret>`` header value, or None."""
    if not authorization:
        return None
    scheme, _, secret = authorization.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    return secret.strip()


def revoke_tokens(*, prefix: str | None = None, username: str | None = None) -> int:
    """Revoke live tokens by prefix (or the whole secret), or every live token of a user.

    Returns how many were revoked. A revoked token is refused from then on."""
    live = ApiToken.objects.filter(revoked_at__isnull=True)
    if prefix is not None:
        live = live.filter(prefix=prefix[:PREFIX_LENGTH])
    if username is not None:
        live = live.filter(user__username=username)
    return live.update(revoked_at=timezone.now())
