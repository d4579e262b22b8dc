"""The operator's acts on a projection rebuild: start, swap, cancel, roll back.

Each is the dismissal's shape: authorize (``reactions_admin.rebuild_projection``), ask the
pure decider (``decider``: the reason), then in one durable ``atomic()`` run the engine's
inner step (``subscribers.rebuilds``: it locks what it needs, makes its change or raises
``RebuildRefused``) and append the act's ``DecisionRegistered`` (context
``ProjectionRebuild``) in the same transaction: both land or neither does. Every door
(admin, REST, MCP, CLI) calls these and maps the same errors.

The swap and the roll back take their locks under a lock timeout of 100 ms, so that
readers never queue long behind them; when a long reader holds a table the act tries
again a few times (``with_lock_retries``: the rebuild's progress says what it waits for)
and then answers 503 ``rebuild_locks_busy``: nothing changed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from eventstore.decisions import register_decision
from reactions_admin import errors
from reactions_admin.acts.dismissal.handler import is_storable
from reactions_admin.acts.operations.decider import Refused
from reactions_admin.acts.rebuilds.decider import Act, Go, Request, audit, decide
from reactions_admin.doors.access import Actor, authorize, database_errors, require_durable_store
from subscribers import rebuilds as engine

#: The permission every rebuild act needs.
REBUILD_PERMISSION = "reactions_admin.rebuild_projection"
#: Every rebuild decision is appended to this stream (the worker's own ones too).
REBUILD_STREAM = "decisions-projection-rebuild"
#: How many times a swap or a roll back tries for its locks before it answers 503.
LOCK_TRIES = 10


@dataclass(frozen=True)
class RebuildActResult:
    """What an accepted act did, and the decision that records it."""

    decision_event_id: uuid.UUID
    subscriber_name: str
    choice: str
    #: The rebuild's phase after the act (``copying_schema`` after a start, ``swapped``,
    #: ``cancelled``, ``rolled_back``).
    phase: str
    #: The decision's inputs: what the engine did (positions, tables, the verification
    #: summary of a swap).
    inputs: Mapping[str, Any]

    def as_payload(self) -> dict[str, Any]:
        """The JSON form every door returns."""
        return {
            "decision_event_id": str(self.decision_event_id),
            "subscriber_name": self.subscriber_name,
            "choice": self.choice,
            "phase": self.phase,
            "inputs": dict(self.inputs),
        }


@contextmanager
def engine_refusals() -> Iterator[None]:
    """The engine's ``RebuildRefused(code, detail)`` as the console's error of that code."""
    try:
        yield
    except engine.RebuildRefused as refused:
        raise errors.for_rebuild_refusal(refused.code, refused.detail) from refused


def _check(request: Request, actor: Actor) -> Go:
    authorize(actor, REBUILD_PERMISSION)
    require_durable_store()
    if not is_storable(request.reason):
        raise errors.UnstorableText(
            "The reason contains a NUL character or an invalid surrogate; it cannot be stored."
        )
    if not is_storable(request.projection):
        raise errors.SubscriberNotFound(f"No subscriber named {request.projection!r}.")
    decision = decide(request)
    if isinstance(decision, Refused):
        raise errors.for_refusal(decision.refusal.value, decision.detail)
    return decision


def _act(
    go: Go,
    actor: Actor,
    via: str,
    step: Callable[[], tuple[str, Mapping[str, Any]]],
) -> RebuildActResult:
    """One try: the engine's step and the decision, in one durable transaction."""
    with transaction.atomic(durable=True):
        phase, done = step()
        recorded = audit(go, done)
        event = register_decision(
            REBUILD_STREAM,
            context=recorded.context,
            choice=recorded.choice,
            reason=recorded.reason,
            actor=actor,
            inputs=recorded.inputs,
            via=via,
        )
    return RebuildActResult(
        event.event_id, go.request.projection, recorded.choice, phase, recorded.inputs
    )


def _run(
    request: Request,
    actor: Actor,
    via: str,
    step: Callable[[], tuple[str, Mapping[str, Any]]],
    *,
    retry_locks: bool = False,
) -> RebuildActResult:
    go = _check(request, actor)
    with database_errors(), engine_refusals():
        if retry_locks:
            return engine.with_lock_retries(
                lambda: _act(go, actor, via, step), name=request.projection, tries=LOCK_TRIES
            )
        return _act(go, actor, via, step)


def _user(actor: Actor) -> Any:
    return actor if actor.is_authenticated else None


def start_rebuild(
    projection: str,
    reason: str,
    actor: Actor,
    *,
    swap_when_verified: bool = False,
    via: str = "api",
) -> RebuildActResult:
    """Start a rebuild of ``projection``: a worker configured with it builds its tables
    again beside the live ones, catches up, and verifies; the swap is another act (or,
    with ``swap_when_verified``, the worker's as soon as ``verify()`` passes). 409
    ``reaction_cannot_be_rebuilt``, ``projection_not_rebuildable``,
    ``rebuild_in_progress``; 404 ``subscriber_not_found``."""
    request = Request(Act.START, projection, reason, swap_when_verified)

    def step() -> tuple[str, Mapping[str, Any]]:
        rebuild = engine.start_rebuild(
            projection,
            reason=reason.strip(),
            started_by=_user(actor),
            swap_when_verified=swap_when_verified,
        )
        return rebuild.phase, {"rebuild_id": rebuild.pk, "tables": list(rebuild.tables)}

    return _run(request, actor, via, step)


def swap_rebuild(
    projection: str, reason: str, actor: Actor, *, via: str = "api"
) -> RebuildActResult:
    """Swap the verified rebuild of ``projection`` in (one short transaction; the previous
    tables are kept for a roll back). The decision carries the verification summary. 409
    ``no_rebuild``, ``rebuild_not_ready``, ``rebuild_failed``, ``table_definition_changed``;
    503 ``rebuild_locks_busy``."""

    def step() -> tuple[str, Mapping[str, Any]]:
        swapped = engine.swap_rebuild(projection)
        return swapped.rebuild.phase, swapped.as_inputs()

    return _run(Request(Act.SWAP, projection, reason), actor, via, step, retry_locks=True)


def cancel_rebuild(
    projection: str, reason: str, actor: Actor, *, via: str = "api"
) -> RebuildActResult:
    """Cancel the rebuild in progress of ``projection`` and drop its tables; the live
    tables are untouched. 409 ``no_rebuild``."""

    def step() -> tuple[str, Mapping[str, Any]]:
        cancelled = engine.cancel_rebuild(projection)
        return cancelled.rebuild.phase, cancelled.as_inputs()

    return _run(Request(Act.CANCEL, projection, reason), actor, via, step)


def roll_back_rebuild(
    projection: str, reason: str, actor: Actor, *, via: str = "api"
) -> RebuildActResult:
    """Swap the tables the last swap of ``projection`` kept back in; the projection's
    bookmark goes back to their position and the live projection catches up from there
    with the code it runs now (the old *data* comes back, not the old code). 409
    ``nothing_to_roll_back``, ``rebuild_in_progress``, ``table_definition_changed``; 503
    ``rebuild_locks_busy``."""

    def step() -> tuple[str, Mapping[str, Any]]:
        rolled = engine.roll_back_rebuild(projection)
        return rolled.rebuild.phase, rolled.as_inputs()

    return _run(Request(Act.ROLL_BACK, projection, reason), actor, via, step, retry_locks=True)


#: The acts by name, for the doors that pick one by an option (the CLI's ``--swap``).
ACTS: dict[str, Callable[..., RebuildActResult]] = {
    "swap": swap_rebuild,
    "cancel": cancel_rebuild,
    "roll_back": roll_back_rebuild,
}
