"""The refusals every act and every read begins with, whatever it does: who may (401, 403),
whether the store can (503 with the in-memory event store), and the database being
unreachable (503), each said once here."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.contrib.auth.models import AbstractUser, AnonymousUser
from django.db import InterfaceError, OperationalError

from eventstore.store import get_event_store
from reactions_admin import errors

#: Whoever acts: a user (anonymous ones are refused with 401).
Actor = AbstractUser | AnonymousUser


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
