"""The rebuild acts' rules: pure functions from what the operator asked and what the engine
did to the decision that audits it, or a refusal.

The engine (``subscribers.rebuilds``) keeps the rules about tables, phases and positions
and refuses with its own codes; what is left to decide here is the operator's part: a
reason that can be recorded, and what each ``DecisionRegistered`` says (its choice and
its inputs: the verification summary for a swap, the estimate for a start). Like the
other deciders this imports nothing from Django and never raises.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reactions_admin.acts.operations.decider import Audit, Refused, check_reason

#: The ``context`` of every rebuild decision (the worker's own ones included).
CONTEXT = "ProjectionRebuild"


class Choice(enum.Enum):
    """The acts an operator takes on a rebuild; the value is the decision's choice."""

    START = "RebuildStarted"
    SWAP = "RebuildSwapped"
    CANCEL = "RebuildCancelled"
    ROLL_BACK = "RebuildRolledBack"
    PAUSE = "RebuildPaused"
    RESUME = "RebuildResumed"
    RETRY = "RebuildRetried"

    @property
    def said(self) -> str:
        """The decision in plain words, for messages: "rebuild rolled back" (the value,
        ``RebuildRolledBack``, is the event's data, not a word for people)."""
        return re.sub(r"(?<!^)(?=[A-Z])", " ", self.value).lower()

    @property
    def verb(self) -> str:
        """How a refusal of a blank reason names the act ("A reason is required to …")."""
        return {
            Choice.START: "start a rebuild",
            Choice.SWAP: "swap a rebuild in",
            Choice.CANCEL: "cancel a rebuild",
            Choice.ROLL_BACK: "roll back a swap",
            Choice.PAUSE: "pause a rebuild",
            Choice.RESUME: "resume a rebuild",
            Choice.RETRY: "retry a failed rebuild",
        }[self]


@dataclass(frozen=True)
class Request:
    """What the operator asked: the act, on which projection, why, and (start only)
    whether the worker swaps as soon as the projection's ``verify()`` passes."""

    act: Choice
    projection: str
    reason: str
    swap_when_verified: bool = False


@dataclass(frozen=True)
class Go:
    """Run the engine's inner step with the trimmed ``reason``."""

    request: Request
    reason: str


def decide(request: Request) -> Go | Refused:
    """Go ahead with the trimmed reason, or refuse (``reason_required``,
    ``reason_too_long``). ``--swap-when-verified`` belongs to a start only."""
    checked = check_reason(request.reason, request.act.verb)
    if isinstance(checked, Refused):
        return checked
    return Go(request, checked)


def audit(go: Go, done: Mapping[str, Any]) -> Audit:
    """The ``DecisionRegistered`` for an act the engine carried out: ``done`` is what the
    engine's step reports (``as_inputs()`` of its result, or the new rebuild's facts)."""
    inputs: dict[str, Any] = {"subscriber": go.request.projection, **done}
    if go.request.act is Choice.START:
        inputs["swap_when_verified"] = go.request.swap_when_verified
    return Audit(CONTEXT, go.request.act.value, go.reason, inputs)
