"""How each reaction is doing: its status, cursor, lag and failing event (the reading
doors' ``/agent/reactions`` and ``list_reactions``)."""

from __future__ import annotations

from typing import Any

from eventstore.store import get_event_store
from reactions_admin import errors
from reactions_admin.acts.dismissal.handler import (
    Actor,
    cursor_payload,
    is_storable,
    require_durable_store,
)
from reactions_admin.acts.parked_streams.rows import is_stream_ordered
from reactions_admin.guards import database_errors
from subscribers.models import Bookmark
from subscribers.registry import handled_event_types
from subscribers.stream_work import work_summary

#: Reading reactions needs either permission: seeing bookmarks, or dismissing in them.
VIEW_PERMISSIONS = ("subscribers.view_bookmark", "reactions_admin.dismiss_event")


def reaction_status(bookmark: Bookmark) -> dict[str, Any]:
    """A reaction's health as JSON: status, cursor, lag (the visible events it has yet to
    handle: only of its ``event_types``, when it declares them), the failing event and last
    error. A stream-ordered reaction's cursor is its intake point, its lag adds the rows
    taken in and not finished (parked streams apart: ``parked_streams``, not in the lag),
    and it is ``degraded`` while streams are parked."""
    store = get_event_store()
    event_types = handled_event_types(bookmark.subscriber_name)
    lag = store.count_between(bookmark.cursor, store.head(), event_types)
    streams: dict[str, Any] = {"ordering": "global", "degraded": False, "parked_streams": 0,
                               "in_flight": 0, "intake_paused": False}  # fmt: skip
    if is_stream_ordered(bookmark.subscriber_name):
        work = work_summary(bookmark.subscriber_name)
        lag += work.open_rows
        streams = {
            "ordering": "stream",
            "degraded": work.parked_streams > 0,
            "parked_streams": work.parked_streams,
            "in_flight": work.in_flight,
            "intake_paused": bookmark.intake_paused_at is not None,
        }
    return {
        "name": bookmark.subscriber_name,
        "status": bookmark.status,
        "cursor": cursor_payload(bookmark.cursor),
        "lag": lag,
        **streams,
        "attempts": bookmark.attempts,
        "failing_event_id": str(bookmark.failing_event_id) if bookmark.failing_event_id else None,
        "last_error": bookmark.last_error,
        "failed_at": bookmark.failed_at.isoformat() if bookmark.failed_at else None,
        "next_retry_at": bookmark.next_retry_at.isoformat() if bookmark.next_retry_at else None,
        "lease_owner": bookmark.lease_owner,
    }


def _authorize_view(actor: Actor) -> None:
    if not actor.is_authenticated or not actor.is_active:
        raise errors.NotAuthenticated("Authentication is required.")
    if not any(actor.has_perm(permission) for permission in VIEW_PERMISSIONS):
        raise errors.PermissionDenied("You may not view reactions.")


def list_reactions(actor: Actor) -> list[dict[str, Any]]:
    """Every reaction's status, by name."""
    _authorize_view(actor)
    require_durable_store()
    with database_errors():
        bookmarks = Bookmark.objects.filter(kind=Bookmark.Kind.REACTION).order_by("subscriber_name")
        return [reaction_status(bookmark) for bookmark in bookmarks]


def get_reaction(subscriber_name: str, actor: Actor) -> dict[str, Any]:
    """One reaction's status (404 ``reaction_not_found`` for an unknown name or a projection)."""
    _authorize_view(actor)
    require_durable_store()
    if not is_storable(subscriber_name):  # no reaction can have this name
        raise errors.ReactionNotFound(f"No reaction named {subscriber_name!r}.")
    with database_errors():
        bookmark = Bookmark.objects.filter(
            subscriber_name=subscriber_name, kind=Bookmark.Kind.REACTION
        ).first()
    if bookmark is None:
        raise errors.ReactionNotFound(f"No reaction named {subscriber_name!r}.")
    with database_errors():
        return reaction_status(bookmark)
