"""How each reaction is doing: its status, cursor, lag and failing event (the reading
doors' ``/agent/reactions`` and ``list_reactions``), and a stream-ordered reaction's
parked streams (``/agent/reactions/{name}/parked-streams``, ``list_parked_streams``)."""

from __future__ import annotations

from typing import Any

from django.db import connection

from eventstore.store import get_event_store
from reactions_admin import errors
from reactions_admin.guards import (
    OPERATE_PERMISSION,
    Actor,
    authorize_any,
    database_errors,
    is_storable,
    require_durable_store,
)
from subscribers import sql
from subscribers.json_form import iso
from subscribers.models import Bookmark
from subscribers.registry import configured_registry, handled_event_types
from subscribers.stream_work import ParkedStream, parked_streams, work_summary

#: Reading reactions needs either permission: seeing bookmarks, or dismissing in them.
VIEW_PERMISSIONS = ("subscribers.view_bookmark", "reactions_admin.dismiss_event")


def is_stream_ordered(name: str) -> bool:
    """Whether reaction ``name`` keeps order per stream: it is configured so, or it has
    unfinished stream work (its rows must be handled or dismissed, never passed over)."""
    registry = configured_registry()
    entry = registry.get(name) if registry else None
    if entry is not None and entry.stream_ordered:
        return True
    with connection.cursor() as cursor:
        cursor.execute(sql.HAS_WORK, {"name": name})
        return bool(cursor.fetchone()[0])


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
        "cursor": bookmark.cursor._asdict(),
        "lag": lag,
        **streams,
        "attempts": bookmark.attempts,
        "failing_event_id": str(bookmark.failing_event_id) if bookmark.failing_event_id else None,
        "last_error": bookmark.last_error,
        "failed_at": iso(bookmark.failed_at),
        "next_retry_at": iso(bookmark.next_retry_at),
        "lease_owner": bookmark.lease_owner,
    }


def list_reactions(actor: Actor) -> list[dict[str, Any]]:
    """Every reaction's status, by name."""
    authorize_any(actor, VIEW_PERMISSIONS, "You may not view reactions.")
    require_durable_store()
    with database_errors():
        bookmarks = Bookmark.objects.filter(kind=Bookmark.Kind.REACTION).order_by("subscriber_name")
        return [reaction_status(bookmark) for bookmark in bookmarks]


def get_reaction(subscriber_name: str, actor: Actor) -> dict[str, Any]:
    """One reaction's status (404 ``reaction_not_found`` for an unknown name or a projection)."""
    authorize_any(actor, VIEW_PERMISSIONS, "You may not view reactions.")
    with database_errors():
        return reaction_status(_reaction(subscriber_name))


def list_parked_streams(subscriber_name: str, actor: Actor) -> list[dict[str, Any]]:
    """The parked streams of reaction ``subscriber_name``, the longest parked first: the
    stream, its head event, error, attempts, since when, how many wait behind. Needs a
    permission to read reactions (or to operate them)."""
    authorize_any(actor, (*VIEW_PERMISSIONS, OPERATE_PERMISSION), "You may not view reactions.")
    with database_errors():
        return [
            parked_payload(parked)
            for parked in parked_streams(_reaction(subscriber_name).subscriber_name)
        ]


def parked_payload(parked: ParkedStream) -> dict[str, Any]:
    """One parked stream as JSON (REST, MCP)."""
    return {
        "stream_id": parked.stream_id,
        "event_id": str(parked.event_id),
        "event_type": parked.event_type,
        "cursor": parked.cursor._asdict(),
        "attempts": parked.attempts,
        "last_error": parked.last_error,
        "parked_at": parked.parked_at.isoformat(),
        "first_parked_at": parked.first_parked_at.isoformat(),
        "waiting": parked.waiting,
    }


def _reaction(name: str) -> Bookmark:
    """The bookmark of reaction ``name``: 503 with the in-memory store, 404 for no such
    reaction (a projection's name included)."""
    require_durable_store()
    bookmark = None
    if is_storable(name):  # no reaction can have another name
        with database_errors():
            bookmark = Bookmark.objects.filter(
                subscriber_name=name, kind=Bookmark.Kind.REACTION
            ).first()
    if bookmark is None:
        raise errors.ReactionNotFound(f"No reaction named {name!r}.")
    return bookmark
