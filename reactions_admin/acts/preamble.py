"""How every act's handler begins, said once here::

    admit(actor, PERMISSION)            401 / 403, then 503 with the in-memory store
    require_storable(reason)            400 unstorable_text (the audit could not hold it)
    with acting_transaction():          one durable transaction; row locks wait at most 5 s;
        bookmark = locked_reaction(name)     a database error is 503; FOR UPDATE, or 404

``durable=True`` makes it impossible to run an act inside another's transaction by
mistake: an act that composes others (a failure group) calls their inner, already-locked
step (``dismiss_locked``, ``retry_stream_locked``), not the act.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper

from reactions_admin import errors
from reactions_admin.guards import (
    Actor,
    authorize,
    database_errors,
    is_storable,
    require_durable_store,
)
from subscribers import sql
from subscribers.models import Bookmark


def admit(actor: Actor, permission: str) -> None:
    """401 for an anonymous actor, 403 without ``permission``, 503 with the in-memory
    event store (it has no bookmarks to act on)."""
    authorize(actor, permission)
    require_durable_store()


def require_storable(reason: str) -> None:
    """400 ``unstorable_text`` for a reason the audit event could not store."""
    if not is_storable(reason):
        raise errors.UnstorableText(
            "The reason contains a NUL character or an invalid surrogate; it cannot be stored."
        )


@contextmanager
def acting_transaction() -> Iterator[CursorWrapper]:
    """The act's one transaction, with a cursor: a worker holds a bookmark row only for a
    short intake or compare-and-set, so waiting longer than ``ACTION_LOCK_TIMEOUT`` means
    something is wrong, and the operator hears so (503 ``database_unavailable``)."""
    with database_errors(), transaction.atomic(durable=True), connection.cursor() as cursor:
        cursor.execute(sql.ACTION_LOCK_TIMEOUT)
        yield cursor


def locked_reaction(name: str) -> Bookmark:
    """The bookmark of reaction ``name``, locked ``FOR UPDATE`` for the transaction (the
    worker's intake and claims take the same lock); 404 ``reaction_not_found``."""
    bookmark = None
    if is_storable(name):
        bookmark = (
            Bookmark.objects.select_for_update()
            .filter(subscriber_name=name, kind=Bookmark.Kind.REACTION)
            .first()
        )
    if bookmark is None:
        raise errors.ReactionNotFound(f"No reaction named {name!r}.")
    return bookmark
