"""The rebuild acts under ``/agent/subscribers/{name}/rebuild``: ``GET`` its state (progress,
estimate, the verification's diff as JSON), ``POST`` to start one, and ``/swap``,
``/cancel``, ``/roll-back``. Each parses, calls one handler and returns its JSON; refusals
are mapped once, by ``reactions_admin.doors.rest.api``'s exception handlers."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import Field

from reactions_admin.acts.rebuilds.handler import (
    cancel_rebuild,
    roll_back_rebuild,
    start_rebuild,
    swap_rebuild,
)
from reactions_admin.doors.rest.console import ReasonIn
from reactions_admin.doors.rest.schemas import ALWAYS, refusals
from reactions_admin.reads.rebuilds import rebuild_state

router = Router(tags=["rebuilds"])


class ProgressOut(Schema):
    """The latest rebuild (open or ended), as its worker last recorded it."""

    projection: str
    phase: str = Field(
        description="copying_schema, building, indexing, catching_up, verifying, ready, "
        "paused, failed (open); swapped, cancelled, rolled_back (ended)"
    )
    phase_label: str
    events_done: int
    events_total: int
    events_remaining: int
    rate_events_per_second: float
    eta_seconds: float | None
    started_at: str
    started_by: str
    reason: str
    note: str = Field(description="What it waits for, in words (empty when nothing).")
    last_error: str
    kept_until: str | None = Field(description="Until when the swap's old tables are kept.")


class SampleOut(Schema):
    key: dict[str, Any]
    live: dict[str, Any] | None = Field(description="The live row (null: only in the new).")
    new: dict[str, Any] | None = Field(description="The new row (null: only in the live).")
    changed: list[str] = Field(description="The columns that differ.")


class SamplesOut(Schema):
    only_live: list[SampleOut]
    only_new: list[SampleOut]
    differing: list[SampleOut]


class TableDiffOut(Schema):
    table: str
    matched_by: list[str]
    natural_key: bool = Field(description="Matched by a unique natural key, not the pk.")
    live_rows: int
    new_rows: int
    only_live: int
    only_new: int
    differing: int
    columns: list[str]
    samples: SamplesOut = Field(description="Up to 20 rows of each kind.")


class DiffOut(Schema):
    """The live and the new tables compared at one position."""

    position: list[int] | None
    verified_at: str | None
    changed_rows: int
    problems: list[str] = Field(description="What verify() found: any blocks the swap.")
    tables: list[TableDiffOut]


class EstimateOut(Schema):
    """What a rebuild started now would replay and take."""

    projection: str
    events: int
    rate_events_per_second: float | None
    estimated_seconds: float | None
    extra_bytes: int = Field(description="About the live tables' size: the new tables' disk.")
    tables: list[str]


class RebuildStateOut(Schema):
    projection: str
    kind: str
    rebuildable: bool
    problems: list[str] = Field(description="What stands in the way of a rebuild.")
    rebuild: ProgressOut | None
    in_progress: bool
    diff: DiffOut | None
    estimate: EstimateOut | None
    acts: list[str] = Field(description="The acts that apply now: start, swap, cancel, roll_back.")


class RebuildStartIn(ReasonIn):
    swap_when_verified: bool = Field(
        False,
        description="Swap as soon as the projection's verify() finds no problem (the worker "
        "swaps, audited with you as the actor and the diff in the decision).",
    )


class RebuildActOut(Schema):
    """What an accepted act did, and the decision that records it."""

    decision_event_id: uuid.UUID
    subscriber_name: str
    choice: str = Field(
        description="RebuildStarted, RebuildSwapped, RebuildCancelled or RebuildRolledBack"
    )
    phase: str = Field(description="The rebuild's phase after the act.")
    inputs: dict[str, Any] = Field(
        description="The decision's inputs (for a swap: the verification summary)."
    )


#: Every act: bad reason, unknown subscriber, refused by the rebuild's state, locks busy.
ACT_REFUSALS = (*ALWAYS, 400, 404, 409, 413, 422)


@router.get(
    "/subscribers/{name}/rebuild", response={200: RebuildStateOut, **refusals(*ALWAYS, 404)}
)
def rebuild(request: HttpRequest, name: str) -> Any:
    """The projection's rebuild: its progress (phase, events done of total, rate, ETA),
    the diff its verification found (rows only in the live tables, only in the new, and
    differing, up to 20 of each side by side, changed columns named), the estimate of a
    new one (events, rate, duration, extra disk) and the acts that apply now."""
    return rebuild_state(name, request.auth).as_json()  # type: ignore[attr-defined]


@router.post(
    "/subscribers/{name}/rebuild", response={200: RebuildActOut, **refusals(*ACT_REFUSALS)}
)
def start(request: HttpRequest, name: str, body: RebuildStartIn) -> Any:
    """Start a rebuild of a projection: a worker builds its tables again beside the live
    ones, catches up and verifies. Needs ``reactions_admin.rebuild_projection``. 409
    ``reaction_cannot_be_rebuilt``, ``projection_not_rebuildable``, ``rebuild_in_progress``."""
    auth = request.auth  # type: ignore[attr-defined]
    return start_rebuild(
        name, body.reason, auth, swap_when_verified=body.swap_when_verified, via="rest"
    ).as_payload()


@router.post(
    "/subscribers/{name}/rebuild/swap", response={200: RebuildActOut, **refusals(*ACT_REFUSALS)}
)
def swap(request: HttpRequest, name: str, body: ReasonIn) -> Any:
    """Swap the verified rebuild in, in one short transaction; the old tables are kept for a
    roll back. Needs ``reactions_admin.rebuild_projection``. 409 ``no_rebuild``,
    ``rebuild_not_ready``, ``rebuild_failed``, ``table_definition_changed``; 503
    ``rebuild_locks_busy`` (a long reader holds a table: nothing changed, try again)."""
    return swap_rebuild(name, body.reason, request.auth, via="rest").as_payload()  # type: ignore[attr-defined]


@router.post(
    "/subscribers/{name}/rebuild/cancel", response={200: RebuildActOut, **refusals(*ACT_REFUSALS)}
)
def cancel(request: HttpRequest, name: str, body: ReasonIn) -> Any:
    """Cancel the rebuild in progress and drop its tables (the live ones are untouched).
    Needs ``reactions_admin.rebuild_projection``. 409 ``no_rebuild``."""
    return cancel_rebuild(name, body.reason, request.auth, via="rest").as_payload()  # type: ignore[attr-defined]


@router.post(
    "/subscribers/{name}/rebuild/roll-back",
    response={200: RebuildActOut, **refusals(*ACT_REFUSALS)},
)
def roll_back(request: HttpRequest, name: str, body: ReasonIn) -> Any:
    """Swap the tables the last swap kept back in: the old data returns (not the old
    code), and the live projection catches up from their position. Needs
    ``reactions_admin.rebuild_projection``. 409 ``nothing_to_roll_back``,
    ``rebuild_in_progress``, ``table_definition_changed``; 503 ``rebuild_locks_busy``."""
    return roll_back_rebuild(name, body.reason, request.auth, via="rest").as_payload()  # type: ignore[attr-defined]
