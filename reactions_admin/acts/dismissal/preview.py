"""What a dismissal would do, shown before the operator confirms: the target event and
the events the move would pass over (the admin's dismissal form)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from eventstore.store import get_event_store
from eventstore.types import RecordedEvent
from reactions_admin import errors
from reactions_admin.acts.preamble import admit
from reactions_admin.guards import DISMISS_PERMISSION, Actor
from subscribers.models import Bookmark
from subscribers.registry import handled_event_types

#: The dismissal form lists at most this many of the events a move would pass over.
PREVIEW_LIMIT = 50


@dataclass(frozen=True)
class DismissalPreview:
    """What the dismissal form shows before the operator confirms.

    For a reaction with ``event_types``, ``passed_over`` and ``passed_over_count`` are only
    the events it would have handled; ``total_count`` counts every event the move passes
    over, whatever its type (the decision's ``events_passed_over``).
    """

    event: RecordedEvent
    passed_over: list[RecordedEvent]
    passed_over_count: int
    total_count: int
    event_types: tuple[str, ...] | None
    #: False while a transaction that began before the event is still open: the dismissal
    #: would be refused (409 event_not_visible_yet), and the counts may still grow.
    visible: bool

    @property
    def filtered(self) -> bool:
        """Whether the reaction handles only some event types (so the two counts differ)."""
        return self.event_types is not None


def preview_dismissal(bookmark: Bookmark, event_id: uuid.UUID, actor: Actor) -> DismissalPreview:
    """The event a dismissal would target and the events the move would pass over that the
    reaction would have handled (the first ``PREVIEW_LIMIT`` of them, and how many), beside
    the count of every event it passes over."""
    admit(actor, DISMISS_PERMISSION)
    store = get_event_store()
    event = store.get_event(event_id)
    if event is None:
        raise errors.EventNotFound(f"No event with id {event_id}.")
    event_types = handled_event_types(bookmark.subscriber_name)
    passed_over = [
        candidate
        for candidate in store.read_all(
            after=bookmark.cursor, limit=PREVIEW_LIMIT, event_types=event_types
        )
        if candidate.cursor <= event.cursor
    ]
    total = store.count_between(bookmark.cursor, event.cursor)
    return DismissalPreview(
        event=event,
        passed_over=passed_over,
        passed_over_count=(
            total
            if event_types is None
            else store.count_between(bookmark.cursor, event.cursor, event_types)
        ),
        total_count=total,
        event_types=event_types,
        visible=store.is_visible(event.cursor),
    )
