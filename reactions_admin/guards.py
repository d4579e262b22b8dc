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

#: Dismissing an event (or a parked stream, or a failure group) needs this.
DISMISS_PERMISSION = "reactions_admin.dismiss_event"
#: Operating a subscriber (retry now, pause, resume; retrying a parked stream) needs this.
OPERATE_PERMISSION = "reactions_admin.operate_subscriber"


def authenticated(actor: Actor) -> None:
    """401 unless ``actor`` is an authenticated, active user."""
    if not actor.is_authenticated or not actor.is_active:
        raise errors.NotAuthenticated("Authentication is required.")


def authorize(actor: Actor, permission: str) -> None:
    """401 for an anonymous actor, 403 for one without ``permission``."""
    authenticated(actor)
    if not actor.has_perm(permission):
        raise errors.PermissionDenied(f"You lack the permission {permission!r}.")


def authorize_any(actor: Actor, permissions: tuple[str, ...], refused: str) -> None:
    """401 for an anonymous actor, 403 (``refused``) for one with none of ``permissions``:
    the reading doors accept any permission that implies reading."""
    authenticated(actor)
    if not any(actor.has_perm(permission) for permission in permissions):
        raise errors.PermissionDenied(refused)


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


def is_storable(text: str) -> bool:
    """Whether PostgreSQL can hold ``text`` in a text or jsonb column: no NUL character and
    no lone surrogate (JSON bodies and MCP arguments can carry both; the database refuses
    them with an error that must not surface as a 500, so a name holding one names nothing)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
