"""What every door shares before it calls a handler: who the caller is, and the refusals
that do not depend on the act (not authenticated, no durable store, database down).

One function turns a token into an actor (:func:`actor_for_token`); one mapping turns a
database error into the 503 refusal (:func:`database_errors`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.contrib.auth.models import AbstractUser, AnonymousUser
from django.db import InterfaceError, OperationalError

from eventstore.store import get_event_store
from reactions_admin import errors
from reactions_admin.acts.tokens.handler import user_for_token

#: Whoever acts: a user (anonymous ones are refused with 401).
Actor = AbstractUser | AnonymousUser


def actor_for_token(secret: str | None) -> Actor:
    """The active user an API token belongs to; 401 ``not_authenticated`` for no token, an
    unknown or revoked one, or one whose user is inactive."""
    if not secret:
        raise errors.NotAuthenticated("An API token is required (Authorization: Bearer <token>).")
    with database_errors():
        user = user_for_token(secret.strip())
    if user is None:
        raise errors.NotAuthenticated("The API token is unknown or revoked.")
    return user


def authenticated(actor: Actor) -> None:
    """401 unless ``actor`` is an authenticated, active user."""
    if not actor.is_authenticated or not actor.is_active:
        raise errors.NotAuthenticated("Authentication is required.")


def authorize(actor: Actor, permission: str) -> None:
    """401 for an anonymous actor, 403 for one without ``permission``."""
    authenticated(actor)
    if not actor.has_perm(permission):
        raise errors.PermissionDenied(f"You lack the permission {permission!r}.")


def require_durable_store() -> None:
    """503 with the in-memory event store: it has no bookmark table."""
    if not get_event_store().durable:
        raise errors.EventStoreNotDurable(
            "The in-memory event store has no bookmarks; this needs PostgreSQL."
        )


@contextmanager
def database_errors() -> Iterator[None]:
    """Turn the driver's "cannot reach the database / lock wait too long" into the 503
    refusal ``database_unavailable``, the one way every door reports it."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        raise errors.DatabaseUnavailable(
            "The database is unavailable or the row is busy; try again."
        ) from exc
