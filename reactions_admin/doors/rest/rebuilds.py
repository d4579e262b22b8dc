"""The rebuild acts under ``/agent/subscribers/{name}/rebuild``: ``GET`` its state (progress,
estimate, the verification's diff as JSON), ``POST`` to start one, and ``/swap``,
``/cancel``, ``/roll-back``. Each parses, calls one handler and returns its JSON; refusals
are mapped once, by ``reactions_admin.doors.rest.api``'s exception handlers; each act's
description, permission and refusals come from its declaration (``acts.rebuilds.handler``)."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import Field

from reactions_admin.acts.rebuilds.handler import BY_FLAG, START, StartRebuild
from reactions_admin.doors.rest.acts import add_subscriber_act_route, operation, run
from reactions_admin.doors.rest.schemas import ALWAYS, ReasonIn, RebuildProgressOut, refusals
from reactions_admin.reads.rebuilds import rebuild_state

router = Router(tags=["rebuilds"])


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
    rebuild: RebuildProgressOut | None
    in_progress: bool
    diff: DiffOut | None
    estimate: EstimateOut | None
    acts: list[str] = Field(
        description="The acts that apply now: start, swap, pause, resume, retry, cancel, roll_back."
    )


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
        description="RebuildStarted, RebuildSwapped, RebuildCancelled, RebuildRolledBack, "
        "RebuildPaused, RebuildResumed or RebuildRetried"
    )
    phase: str = Field(description="The rebuild's phase after the act.")
    inputs: dict[str, Any] = Field(
        description="The decision's inputs (for a swap: the verification summary)."
    )


@router.get(
    "/subscribers/{name}/rebuild", response={200: RebuildStateOut, **refusals(*ALWAYS, 404)}
)
def rebuild(request: HttpRequest, name: str) -> Any:
    """The projection's rebuild: its progress (phase, events done of total, rate, ETA),
    the diff its verification found (rows only in the live tables, only in the new, and
    differing, up to 20 of each side by side, changed columns named), the estimate of a
    new one (events, rate, duration, extra disk) and the acts that apply now."""
    return rebuild_state(name, request.auth).as_json()  # type: ignore[attr-defined]


@router.post("/subscribers/{name}/rebuild", **operation(START, RebuildActOut))
def start(request: HttpRequest, name: str, body: RebuildStartIn) -> Any:
    return run(request, START, StartRebuild(name, body.reason, body.swap_when_verified))


# ``/swap``, ``/cancel``, ``/roll-back``, ...; each route's view is named as the flag.
for flag, act in BY_FLAG.items():
    path = f"/subscribers/{{name}}/rebuild/{flag.replace('_', '-')}"
    add_subscriber_act_route(router, path, act, RebuildActOut, view=flag, module=__name__)
