"""How an act records what it decided: one ``DecisionRegistered`` (the decider's
``Audit``: context, choice, reason, inputs) appended to the act family's stream in the
act's own transaction, so that the change and its record land together or not at all."""

from __future__ import annotations

import uuid

from eventstore.decisions import DecisionActor, register_decision
from eventstore.types import RecordedEvent
from reactions_admin.acts.operations.decider import Audit


def record(
    stream: str, audit: Audit, actor: DecisionActor, via: str, **ids: uuid.UUID | None
) -> RecordedEvent:
    """Append ``audit`` to ``stream``, by ``actor`` through the door ``via`` (``ids``: its
    ``correlation_id``, ``causation_id``)."""
    return register_decision(
        stream,
        context=audit.context,
        choice=audit.choice,
        reason=audit.reason,
        actor=actor,
        inputs=audit.inputs,
        via=via,
        **ids,
    )
