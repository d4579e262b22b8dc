"""How a dismissal is recorded, whatever the reaction's order: one ``DecisionRegistered``
(``ReactionDismissal`` / ``EventDismissed``) per dismissed event, on the dismissal stream;
and how an earlier one is found (to say who dismissed an event already)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from eventstore.decisions import DECISION_EVENT_TYPE
from eventstore.models import Event
from eventstore.types import RecordedEvent
from reactions_admin.acts.decision import record
from reactions_admin.acts.dismissal.decider import (
    DECISION_STREAM,
    DISMISSAL_CHOICE,
    DISMISSAL_CONTEXT,
    PriorDismissal,
)
from reactions_admin.acts.operations.decider import Audit
from reactions_admin.guards import Actor


def record_dismissal(
    event_id: uuid.UUID,
    reason: str,
    inputs: Mapping[str, Any],
    actor: Actor,
    via: str,
    correlation_id: uuid.UUID,
) -> RecordedEvent:
    """Append the decision that dismissed ``event_id``, in the caller's transaction."""
    audit = Audit(DISMISSAL_CONTEXT, DISMISSAL_CHOICE, reason, inputs)
    return record(
        DECISION_STREAM, audit, actor, via, correlation_id=correlation_id, causation_id=event_id
    )


def prior_dismissal(subscriber_name: str, event_id: uuid.UUID) -> PriorDismissal | None:
    """The latest decision that dismissed ``event_id`` in this reaction, if one did."""
    found = (
        Event.objects.filter(
            stream_id=DECISION_STREAM,
            event_type=DECISION_EVENT_TYPE,
            data__choice=DISMISSAL_CHOICE,
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
