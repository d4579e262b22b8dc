"""``dismiss_event_in_reaction``: the one handler every door calls.

Load, decide, save: authorize, lock the bookmark, load the event, ask the pure
decider, then move the bookmark and append the audit event in one transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from eventstore.decisions import DECISION_EVENT_TYPE, register_decision
from eventstore.horizon import horizon_holders
from eventstore.models import Event
from eventstore.store import get_event_store
from eventstore.types import Cursor
from reactions_admin import errors, guards
from reactions_admin.acts.dismissal.decider import (
    DISMISSAL_CHOICE,
    DISMISSAL_CONTEXT,
    DismissalRejected,
    PriorDismissal,
    Rejection,
    decide_dismissal,
)
from reactions_admin.acts.parked_streams.decider import (
    EventsDismissed,
    TargetEvent,
    decide_head_dismissal,
    decide_reason,
)
from reactions_admin.acts.parked_streams.rows import accepted, is_stream_ordered, locked_stream
from reactions_admin.guards import Actor as Actor  # re-exported: every door names it here
from subscribers import sql
from subscribers.models import Bookmark
from subscribers.registry import handled_event_types

#: The permission every door checks.
DISMISS_PERMISSION = "reactions_admin.dismiss_event"
#: Every dismissal is appended to this stream (one audit trail, in order).
DECISION_STREAM = "decisions-reaction-dismissal"
#: How long a dismissal waits for a worker to release the bookmark row.
LOCK_TIMEOUT = "5s"


@dataclass(frozen=True)
class DismissalResult:
    """What a successful dismissal did."""

    decision_event_id: uuid.UUID
    subscriber_name: str
    event_id: uuid.UUID
    cursor_before: Cursor
    cursor_after: Cursor
    #: Every event in ``(cursor_before, cursor_after]``, whatever its type.
    events_passed_over: int
    #: Those of them the reaction would have handled (its ``event_types``; all when it has none).
    handled_events_passed_over: int
    #: "global" (the bookmark moved) or "stream" (a parked head's row was deleted).
    ordering: str = "global"
    #: In a stream-ordered reaction: the stream the dismissed event was the head of.
    stream_id: str | None = None

    def passed_over_text(self) -> str:
        """The counts in words: "8 event(s), 2 of them of types the reaction handles"."""
        text = f"{self.events_passed_over} event(s)"
        if self.handled_events_passed_over != self.events_passed_over:
            text += f", {self.handled_events_passed_over} of them of types the reaction handles"
        return text

    def as_payload(self) -> dict[str, Any]:
        """The JSON form every door returns."""
        return {
            "decision_event_id": str(self.decision_event_id),
            "subscriber_name": self.subscriber_name,
            "event_id": str(self.event_id),
            "cursor_before": cursor_payload(self.cursor_before),
            "cursor_after": cursor_payload(self.cursor_after),
            "events_passed_over": self.events_passed_over,
            "handled_events_passed_over": self.handled_events_passed_over,
            "ordering": self.ordering,
            "stream_id": self.stream_id,
        }


def cursor_payload(cursor: Cursor) -> dict[str, int]:
    return {"transaction_id": cursor.transaction_id, "position": cursor.position}


def authorize(actor: Actor, permission: str = DISMISS_PERMISSION) -> None:
    """401 for an anonymous actor, 403 for one without ``permission`` (the dismissal's,
    unless named)."""
    guards.authorize(actor, permission)


def parse_event_id(event_id: uuid.UUID | str) -> uuid.UUID:
    """The event id as a UUID (400 ``invalid_event_id`` otherwise)."""
    if isinstance(event_id, uuid.UUID):
        return event_id
    try:
        return uuid.UUID(str(event_id).strip())
    except ValueError:
        raise errors.InvalidEventId(f"{str(event_id)[:100]!r} is not a UUID.") from None


def is_storable(text: str) -> bool:
    """Whether PostgreSQL can hold ``text`` in a text or jsonb column: no NUL character and
    no lone surrogate (JSON bodies and MCP arguments can carry both; the database refuses
    them with an error that must not surface as a 500)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def require_storable_reason(reason: str) -> None:
    """400 ``unstorable_text`` for a reason the audit event could not store."""
    if not is_storable(reason):
        raise errors.UnstorableText(
            "The reason contains a NUL character or an invalid surrogate; it cannot be stored."
        )


require_durable_store = guards.require_durable_store


def dismiss_event_in_reaction(
    subscriber_name: str,
    event_id: uuid.UUID | str,
    reason: str,
    actor: Actor,
    *,
    via: str = "api",
    correlation_id: uuid.UUID | None = None,
) -> DismissalResult:
    """Dismiss ``event_id`` in the reaction ``subscriber_name``: move its bookmark to
    that event, clear its failure state and audit the decision, all or nothing.

    In a stream-ordered reaction only the head event of a parked stream may be dismissed:
    its work row is deleted (the bookmark, the intake point, stays) and the decision
    appended in the same transaction; the next event of that stream becomes the head.

    Raises a ``ReactionsError`` subclass on refusal. ``via`` names the door
    (recorded in the decision's metadata).
    """
    authorize(actor)
    require_durable_store()
    target = parse_event_id(event_id)
    require_storable_reason(reason)
    if not is_storable(subscriber_name):
        raise errors.ReactionNotFound(f"No reaction named {subscriber_name!r}.")
    with guards.database_errors():
        return _dismiss(subscriber_name, target, reason, actor, via, correlation_id or uuid.uuid4())


def _dismiss(
    subscriber_name: str,
    target: uuid.UUID,
    reason: str,
    actor: Actor,
    via: str,
    correlation_id: uuid.UUID,
) -> DismissalResult:
    store = get_event_store()
    with transaction.atomic():
        with connection.cursor() as cursor:
            # A worker holds the row only for a short compare-and-set; waiting longer
            # than this means something is wrong, and the operator should hear so.
            cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        # The target is read before the row lock gives this transaction an id: it committed
        # before that id was assigned, so its id is smaller than ours, and our own open
        # transaction never keeps it from being visible (nor lands our decision before it).
        event = store.get_event(target)
        bookmark = (
            Bookmark.objects.select_for_update()
            .filter(subscriber_name=subscriber_name, kind=Bookmark.Kind.REACTION)
            .first()
        )
        if bookmark is None:
            raise errors.ReactionNotFound(f"No reaction named {subscriber_name!r}.")
        if event is None:
            raise errors.EventNotFound(f"No event with id {target}.")
        if is_stream_ordered(subscriber_name):
            with connection.cursor() as cursor:
                return _dismiss_stream_head(
                    cursor, bookmark, event, reason, actor, via, correlation_id
                )
        # Only a refused rewind needs the (stream-scanning) look for an earlier decision.
        prior = (
            None if event.cursor > bookmark.cursor else _prior_dismissal(subscriber_name, target)
        )
        decision = decide_dismissal(
            bookmark.cursor,
            event.cursor,
            reason,
            visible=store.is_visible(event.cursor),
            prior=prior,
        )
        if isinstance(decision, DismissalRejected):
            if decision.rejection is Rejection.EVENT_NOT_VISIBLE_YET:
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
        recorded = register_decision(
            DECISION_STREAM,
            context=DISMISSAL_CONTEXT,
            choice=DISMISSAL_CHOICE,
            reason=decision.reason,
            actor=actor,
            inputs=decision.inputs(
                reaction=subscriber_name,
                event_id=event.event_id,
                event_type=event.event_type,
                passed_over=passed_over,
                handled_passed_over=handled_passed_over,
            ),
            via=via,
            correlation_id=correlation_id,
            causation_id=event.event_id,
        )
    return DismissalResult(
        decision_event_id=recorded.event_id,
        subscriber_name=subscriber_name,
        event_id=event.event_id,
        cursor_before=decision.cursor_before,
        cursor_after=decision.cursor_after,
        events_passed_over=passed_over,
        handled_events_passed_over=handled_passed_over,
    )


def dismiss_rows(
    cursor: CursorWrapper,
    decision: EventsDismissed,
    actor: Actor,
    via: str,
    correlation_id: uuid.UUID,
) -> tuple[DismissalResult, ...]:
    """Delete the decided rows and append one ``EventDismissed`` per event, in the
    caller's transaction (both land or neither does)."""
    cursor.execute(
        sql.DELETE_WORK_EVENTS,
        {"name": decision.reaction, "event_ids": [item.event_id for item in decision.items]},
    )
    if len(cursor.fetchall()) != len(decision.items):  # the rows are locked: cannot happen
        raise RuntimeError("a locked work row disappeared")
    results = []
    for item in decision.items:
        recorded = register_decision(
            DECISION_STREAM,
            context="ReactionDismissal",
            choice="EventDismissed",
            reason=decision.reason,
            actor=actor,
            inputs=decision.inputs(item),
            via=via,
            correlation_id=correlation_id,
            causation_id=item.event_id,
        )
        results.append(
            DismissalResult(
                decision_event_id=recorded.event_id,
                subscriber_name=decision.reaction,
                event_id=item.event_id,
                cursor_before=item.cursor,
                cursor_after=item.cursor,
                events_passed_over=1,
                handled_events_passed_over=1,
                ordering="stream",
                stream_id=decision.stream_id,
            )
        )
    return tuple(results)


def _dismiss_stream_head(
    cursor: CursorWrapper,
    bookmark: Bookmark,
    event: Any,
    reason: str,
    actor: Actor,
    via: str,
    correlation_id: uuid.UUID,
) -> DismissalResult:
    """Steps 5 to 8 in a stream-ordered reaction (bookmark row locked, reaction and event
    found): the reason (400), lock the stream's rows, the decider (409), then delete the
    head's row and append its decision."""
    trimmed = accepted(decide_reason(reason))
    stream = locked_stream(cursor, bookmark.subscriber_name, event.stream_id)
    target = TargetEvent(event.event_id, event.event_type, event.stream_id, event.cursor)
    decision = accepted(
        decide_head_dismissal(
            bookmark.subscriber_name,
            bookmark.cursor,
            target,
            handled_event_types(bookmark.subscriber_name),
            stream,
            trimmed,
        )
    )
    [result] = dismiss_rows(cursor, decision, actor, via, correlation_id)
    return result


def _prior_dismissal(subscriber_name: str, event_id: uuid.UUID) -> PriorDismissal | None:
    """The latest decision that dismissed ``event_id`` in this reaction, if one did."""
    found = (
        Event.objects.filter(
            stream_id=DECISION_STREAM,
            event_type=DECISION_EVENT_TYPE,
            data__choice="EventDismissed",
            data__inputs__reaction=subscriber_name,
            data__inputs__event_id=str(event_id),
        )
        .order_by("-stream_version")
        .only("event_id", "data", "recorded_at")
        .first()
    )
    if found is None:
        return None
    actor = found.data.get("actor") or {}
    return PriorDismissal(
        decision_event_id=found.event_id,
        actor=str(actor.get("username") or actor.get("os_user") or ""),
        recorded_at=found.recorded_at,
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
    return _dismiss(subscriber_name, target, reason, actor, via, correlation_id)
