"""``dismiss_event_in_reaction``: the dismissal, the one handler every door calls.

Load, decide, save: the preamble (authorize, the durable store, one transaction), load
the event, lock the bookmark; then by the reaction's order —

* global (here): ask the pure decider (``decider.py``), move the bookmark to the event and
  append the audit event, in the same transaction;
* per stream: the event must be the head of a parked stream, whose row is deleted
  (``acts/parked_streams/handler.py``'s ``dismiss_head_locked``).
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from django.utils import timezone

from eventstore.horizon import horizon_holders
from eventstore.store import get_event_store
from eventstore.types import Cursor
from reactions_admin import errors
from reactions_admin.acts.act import REASON_REFUSALS, Act, OnEvent
from reactions_admin.acts.dismissal.audit import prior_dismissal, record_dismissal
from reactions_admin.acts.dismissal.decider import (
    DismissalRejected,
    DismissalResult,
    Rejection,
    decide_dismissal,
)
from reactions_admin.acts.parked_streams.handler import dismiss_head_locked
from reactions_admin.acts.preamble import (
    acting_transaction,
    admit,
    locked_reaction,
    require_storable,
)
from reactions_admin.guards import DISMISS_PERMISSION, Actor
from reactions_admin.reads.reactions import is_stream_ordered
from subscribers.models import Bookmark
from subscribers.registry import handled_event_types


def parse_event_id(event_id: uuid.UUID | str) -> uuid.UUID:
    """The event id as a UUID (400 ``invalid_event_id`` otherwise)."""
    if isinstance(event_id, uuid.UUID):
        return event_id
    try:
        return uuid.UUID(str(event_id).strip())
    except ValueError:
        raise errors.InvalidEventId(f"{str(event_id)[:100]!r} is not a UUID.") from None


def dismiss_event_in_reaction(
    subscriber_name: str,
    event_id: uuid.UUID | str,
    reason: str,
    actor: Actor,
    *,
    via: str = "api",
    correlation_id: uuid.UUID | None = None,
) -> DismissalResult:
    """Dismiss a poison event: move the reaction's bookmark to the event (which must lie
    after it and be visible to every reader), clear its failure state and audit the
    decision with the reason, all or nothing. In a stream-ordered reaction only the head
    event of a parked stream may be dismissed: its row is deleted and the next event of
    that stream becomes the head."""
    admit(actor, DISMISS_PERMISSION)
    target = parse_event_id(event_id)
    require_storable(reason)
    with acting_transaction():
        return dismiss_locked(
            subscriber_name, target, reason, actor, via, correlation_id or uuid.uuid4()
        )


def dismiss_locked(
    subscriber_name: str,
    target: uuid.UUID,
    reason: str,
    actor: Actor,
    via: str,
    correlation_id: uuid.UUID,
) -> DismissalResult:
    """One dismissal inside the caller's transaction, for a caller that has authorized it
    already (dismissing a failure group: all of them land, or none)."""
    store = get_event_store()
    # The target is read before the row lock gives this transaction an id: it committed
    # before that id was assigned, so its id is smaller than ours, and our own open
    # transaction never keeps it from being visible (nor lands our decision before it).
    event = store.get_event(target)
    bookmark = locked_reaction(subscriber_name)
    if event is None:
        raise errors.EventNotFound(f"No event with id {target}.")
    if is_stream_ordered(subscriber_name):
        return dismiss_head_locked(bookmark, event, reason, actor, via, correlation_id)
    # Only a refused rewind needs the (stream-scanning) look for an earlier decision.
    prior = None if event.cursor > bookmark.cursor else prior_dismissal(subscriber_name, target)
    decision = decide_dismissal(
        bookmark.cursor,
        event.cursor,
        reason,
        visible=store.is_visible(event.cursor),
        prior=prior,
    )
    if isinstance(decision, DismissalRejected):
        if decision.refusal is Rejection.EVENT_NOT_VISIBLE_YET:
            decision = replace(decision, detail=f"{decision.detail} {_held_back_by()}")
        raise errors.from_rejection(decision)
    # Exact, not just "what is visible now": the target is under the horizon, so every
    # transaction with a smaller id -- all that can put an event in (cursor_before,
    # cursor_after] -- has ended, committed or rolled back; a later one gets a larger id
    # and lands after cursor_after. The range is closed for good: these counts, in this
    # transaction or any later one, are what the move passes over, and always will be.
    event_types = handled_event_types(subscriber_name)
    passed_over = store.count_between(decision.cursor_before, decision.cursor_after)
    handled_passed_over = (
        passed_over
        if event_types is None
        else store.count_between(decision.cursor_before, decision.cursor_after, event_types)
    )
    _move_past(bookmark, decision.cursor_after)
    inputs = decision.inputs(
        reaction=subscriber_name,
        event_id=event.event_id,
        event_type=event.event_type,
        passed_over=passed_over,
        handled_passed_over=handled_passed_over,
    )
    recorded = record_dismissal(event.event_id, decision.reason, inputs, actor, via, correlation_id)
    return DismissalResult(
        decision_event_id=recorded.event_id,
        subscriber_name=subscriber_name,
        event_id=event.event_id,
        cursor_before=decision.cursor_before,
        cursor_after=decision.cursor_after,
        events_passed_over=passed_over,
        handled_events_passed_over=handled_passed_over,
    )


def _held_back_by() -> str:
    """Who keeps the horizon back: the oldest open transactions holding an id."""
    holders = horizon_holders(min_age_seconds=0, limit=3)
    if not holders:
        return (
            "No open transaction is holding it back any more (or it is a prepared "
            "transaction, see pg_prepared_xacts); try again."
        )
    named = "; ".join(f"transaction {h.transaction_id} of {h}" for h in holders)
    return f"Held back by: {named}."


def _move_past(bookmark: Bookmark, cursor: Cursor) -> None:
    bookmark.last_transaction_id = cursor.transaction_id
    bookmark.last_position = cursor.position
    if bookmark.status == Bookmark.Status.PAUSED:
        # An operator's pause outlives the dismissal: it resumes as active (no failure left).
        bookmark.paused_from = ""
    else:
        bookmark.status = Bookmark.Status.ACTIVE
    bookmark.attempts = 0
    bookmark.failing_event_id = None
    bookmark.last_error = ""
    bookmark.last_traceback = ""
    bookmark.failed_at = None
    bookmark.next_retry_at = None
    bookmark.lease_owner = ""
    bookmark.lease_expires_at = None
    bookmark.updated_at = timezone.now()
    bookmark.save()


DISMISS_EVENT = Act(
    name="dismiss_event_in_reaction",
    verb="Dismiss event",
    permission=DISMISS_PERMISSION,
    input=OnEvent,
    result=DismissalResult,
    refusals=(
        errors.InvalidEventId,
        *REASON_REFUSALS,
        errors.ReactionNotFound,
        errors.EventNotFound,
        errors.RewindRefused,
        errors.EventAlreadyDismissed,
        errors.EventNotVisibleYet,
        errors.StreamRefused,
    ),
    run=dismiss_event_in_reaction,
    destructive=True,
)
