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

from reactions_admin import errors
from reactions_admin.acts.act import REASON_REFUSALS, Family, OnSubscriber
from reactions_admin.acts.decision import record
from reactions_admin.acts.operations.decider import Refused
from reactions_admin.acts.preamble import admit, require_storable
from reactions_admin.acts.rebuilds.decider import Choice, Go, Request, audit, decide
from reactions_admin.acts.result import FieldsPayload
from reactions_admin.guards import Actor, database_errors, is_storable
from subscribers import rebuilds as engine
from subscribers.registry import configured_registry

#: The permission every rebuild act needs.
REBUILD_PERMISSION = "reactions_admin.rebuild_projection"
#: Every rebuild decision is appended to this stream (the worker's own ones too).
REBUILD_STREAM = "decisions-projection-rebuild"
#: How many times a swap or a roll back tries for its locks before it answers 503.
LOCK_TRIES = 10

#: The engine's part of an act, run in the act's transaction: the rebuild's phase after
#: it, and what it did (the decision's inputs).
Step = Callable[[], tuple[str, Mapping[str, Any]]]


@dataclass(frozen=True)
class StartRebuild(OnSubscriber):
    """The input of a start: which projection, why, and whether the worker swaps as soon
    as the projection's ``verify()`` finds no problem (``--swap-when-verified``)."""

    swap_when_verified: bool = False


@dataclass(frozen=True)
class RebuildActResult(FieldsPayload):
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

    def text(self) -> str:
        """ "demo.scorecards: rebuild swapped, now swapped. Decision …" """
        return (
            f"{self.subscriber_name}: {Choice(self.choice).said}, "
            f"now {self.phase.replace('_', ' ')}. "
            f"Decision {self.decision_event_id}."
        )


@contextmanager
def engine_refusals() -> Iterator[None]:
    """The engine's ``RebuildRefused(code, detail)`` as the console's error of that code."""
    try:
        yield
    except engine.RebuildRefused as refused:
        raise errors.for_rebuild_refusal(refused.code, refused.detail) from refused


@contextmanager
def unknown_name_first(name: str) -> Iterator[None]:
    """Nothing to act on *and* no subscriber of that name: say the latter (404
    ``subscriber_not_found``), as a start and a swap do, not ``no_rebuild``. Only then:
    the open rebuild of a projection since removed from the configuration can still be
    cancelled."""
    try:
        yield
    except (errors.NoRebuild, errors.NothingToRollBack) as nothing:
        registry = configured_registry()
        if registry is None or registry.get(name) is None:
            raise errors.SubscriberNotFound(f"No subscriber named {name!r}.") from nothing
        raise


def _check(request: Request, actor: Actor) -> Go:
    admit(actor, REBUILD_PERMISSION)
    require_storable(request.reason)
    if not is_storable(request.projection):
        raise errors.SubscriberNotFound(f"No subscriber named {request.projection!r}.")
    decision = decide(request)
    if isinstance(decision, Refused):
        raise errors.from_rejection(decision)
    return decision


def _act(go: Go, actor: Actor, via: str, step: Step) -> RebuildActResult:
    """One try: the engine's step and the decision, in one durable transaction."""
    with transaction.atomic(durable=True):
        phase, done = step()
        recorded = audit(go, done)
        event = record(REBUILD_STREAM, recorded, actor, via)
    return RebuildActResult(
        event.event_id, go.request.projection, recorded.choice, phase, recorded.inputs
    )


def _run(
    request: Request,
    actor: Actor,
    via: str,
    step: Step,
    *,
    retry_locks: bool = False,
) -> RebuildActResult:
    go = _check(request, actor)
    with database_errors(), unknown_name_first(request.projection), engine_refusals():
        if retry_locks:
            return engine.with_lock_retries(
                lambda: _act(go, actor, via, step), name=request.projection, tries=LOCK_TRIES
            )
        return _act(go, actor, via, step)


def _user(actor: Actor) -> Any:
    return actor if actor.is_authenticated else None


def start_rebuild(
    subscriber_name: str,
    reason: str,
    actor: Actor,
    *,
    swap_when_verified: bool = False,
    via: str = "api",
) -> RebuildActResult:
    """Start a rebuild of a projection: a worker configured with it builds its tables again
    from the events beside the live ones (which stay in service), catches up with the live
    projection and compares the two at one position; the swap is another act (or, with
    swap_when_verified, the worker's as soon as the projection's verify() finds no problem)."""
    name = subscriber_name
    request = Request(Choice.START, name, reason, swap_when_verified)

    def step() -> tuple[str, Mapping[str, Any]]:
        rebuild = engine.start_rebuild(
            name,
            reason=reason.strip(),
            started_by=_user(actor),
            swap_when_verified=swap_when_verified,
        )
        return rebuild.phase, {"rebuild_id": rebuild.pk, "tables": list(rebuild.tables)}

    return _run(request, actor, via, step)


def swap_rebuild(
    subscriber_name: str, reason: str, actor: Actor, *, via: str = "api"
) -> RebuildActResult:
    """Swap a verified rebuild in: in one short transaction the new tables take the live
    ones' names, at the live position; the previous tables are kept for a roll back. The
    decision carries the verification summary. A long reader holding a table makes it try
    again a few times, then give up with nothing changed."""
    step = _reported_step(subscriber_name, engine.swap_rebuild)
    request = Request(Choice.SWAP, subscriber_name, reason)
    return _run(request, actor, via, step, retry_locks=True)


def cancel_rebuild(
    subscriber_name: str, reason: str, actor: Actor, *, via: str = "api"
) -> RebuildActResult:
    """Cancel a rebuild in progress and drop its new tables; the live tables are untouched."""
    step = _reported_step(subscriber_name, engine.cancel_rebuild)
    return _run(Request(Choice.CANCEL, subscriber_name, reason), actor, via, step)


def roll_back_rebuild(
    subscriber_name: str, reason: str, actor: Actor, *, via: str = "api"
) -> RebuildActResult:
    """Roll back the last swap: the tables it kept take the live names again, and the
    projection's bookmark goes back to their position; the live projection catches up from
    there with the code it runs now (the old data returns, not the old code)."""
    step = _reported_step(subscriber_name, engine.roll_back_rebuild)
    request = Request(Choice.ROLL_BACK, subscriber_name, reason)
    return _run(request, actor, via, step, retry_locks=True)


def _reported_step(name: str, inner: Callable[[str], Any]) -> Step:
    """An engine step that reports what it did (a swap, a cancel, a roll back): the
    rebuild's phase after it, and its ``as_inputs()`` for the decision."""

    def step() -> tuple[str, Mapping[str, Any]]:
        done = inner(name)
        return done.rebuild.phase, done.as_inputs()

    return step


def _phase_step(name: str, inner: Callable[[str], Any]) -> Step:
    """An engine step that only moves the rebuild's phase (a pause, a resume, a retry)."""

    def step() -> tuple[str, Mapping[str, Any]]:
        before = engine.current_rebuild(name)
        rebuild = inner(name)
        return rebuild.phase, {
            "rebuild_id": rebuild.pk,
            "phase_before": before.phase if before is not None else None,
            "phase_after": rebuild.phase,
            "events_done": rebuild.events_done,
        }

    return step


def pause_rebuild(
    subscriber_name: str, reason: str, actor: Actor, *, via: str = "api"
) -> RebuildActResult:
    """Pause a rebuild in progress: no worker works on it until it is resumed (its batch in
    flight ends first); the live projection goes on."""
    step = _phase_step(subscriber_name, engine.pause_rebuild)
    return _run(Request(Choice.PAUSE, subscriber_name, reason), actor, via, step)


def resume_rebuild(
    subscriber_name: str, reason: str, actor: Actor, *, via: str = "api"
) -> RebuildActResult:
    """Resume a paused rebuild where it stood."""
    step = _phase_step(subscriber_name, engine.resume_rebuild)
    return _run(Request(Choice.RESUME, subscriber_name, reason), actor, via, step)


def retry_rebuild(
    subscriber_name: str, reason: str, actor: Actor, *, via: str = "api"
) -> RebuildActResult:
    """Retry a failed rebuild from where it stood (its attempts start over): after fixing
    the code that failed, or the cause outside it."""
    step = _phase_step(subscriber_name, engine.retry_rebuild)
    return _run(Request(Choice.RETRY, subscriber_name, reason), actor, via, step)


#: Every rebuild act: the projection's name and a reason; an unknown subscriber is 404.
REBUILDS = Family(OnSubscriber, REBUILD_PERMISSION, (*REASON_REFUSALS, errors.SubscriberNotFound))

START = REBUILDS.act(
    "start_rebuild", "Rebuild", start_rebuild, RebuildActResult,
    errors.ReactionCannotBeRebuilt, errors.ProjectionNotRebuildable, errors.RebuildInProgress,
    input=StartRebuild,
)  # fmt: skip
SWAP = REBUILDS.act(
    "swap_rebuild", "Swap the rebuild in", swap_rebuild, RebuildActResult,
    errors.NoRebuild, errors.RebuildNotReady, errors.RebuildFailed,
    errors.TableDefinitionChanged, errors.RebuildLocksBusy,
)  # fmt: skip
CANCEL = REBUILDS.act(
    "cancel_rebuild", "Cancel the rebuild", cancel_rebuild, RebuildActResult,
    errors.NoRebuild,
    destructive=True,
)  # fmt: skip
ROLL_BACK = REBUILDS.act(
    "roll_back_rebuild", "Roll back the last swap", roll_back_rebuild, RebuildActResult,
    errors.NothingToRollBack, errors.RebuildInProgress, errors.TableDefinitionChanged,
    errors.RebuildLocksBusy,
    destructive=True,
)  # fmt: skip
PAUSE = REBUILDS.act(
    "pause_rebuild", "Pause the rebuild", pause_rebuild, RebuildActResult,
    errors.NoRebuild, errors.RebuildFailed,
)  # fmt: skip
RESUME = REBUILDS.act(
    "resume_rebuild", "Resume the rebuild", resume_rebuild, RebuildActResult,
    errors.NoRebuild, errors.RebuildFailed,
)  # fmt: skip
RETRY = REBUILDS.act(
    "retry_rebuild", "Retry the rebuild", retry_rebuild, RebuildActResult, errors.NoRebuild
)

#: The acts other than a start, by the option that picks one (the CLI's ``--swap``).
BY_FLAG = {
    "swap": SWAP, "cancel": CANCEL, "roll_back": ROLL_BACK,
    "pause": PAUSE, "resume": RESUME, "retry": RETRY,
}  # fmt: skip
