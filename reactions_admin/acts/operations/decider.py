"""The rules of the operations on a subscriber (retry now, pause, resume): pure functions
from what the handler found to a decision that carries the bookmark's new state and the
audit event's data, or a refusal. Like every decider, this imports nothing from Django and
never raises. (The failure groups' decider, ``acts/failure_groups/decider.py``, answers
in the same values.)
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reactions_admin.acts import reasons
from reactions_admin.acts.refusal import Rejected

#: The ``context`` of every decision these actions record.
CONTEXT = "SubscriberOperation"
BULK_CONTEXT = "FailureGroup"


class Refusal(enum.Enum):
    """Why an operation (or an act on a failure group) is refused; the value is the code."""

    REASON_REQUIRED = "reason_required"
    REASON_TOO_LONG = "reason_too_long"
    NOTHING_TO_RETRY = "nothing_to_retry"
    SUBSCRIBER_PAUSED = "subscriber_paused"
    ALREADY_PAUSED = "already_paused"
    NOT_PAUSED = "not_paused"
    GROUP_CHANGED = "group_changed"
    NOT_DISMISSABLE = "not_dismissable"


@dataclass(frozen=True)
class Subject:
    """The subscriber an action is about, as its locked bookmark row shows it."""

    name: str
    kind: str
    status: str
    attempts: int
    failing_event_id: uuid.UUID | None
    paused_from: str = ""
    #: Stream-ordered rows waiting for a retry (not parked): what "retry now" can hurry.
    retrying_rows: int = 0


@dataclass(frozen=True)
class Audit:
    """The ``DecisionRegistered`` an accepted action appends: its choice, reason, inputs."""

    context: str
    choice: str
    reason: str
    inputs: Mapping[str, Any]


@dataclass(frozen=True)
class Accepted:
    """Carry out ``changes`` on the bookmark (field -> value; ``NOW`` for the database's
    clock) and append ``audit``. ``hurry_rows``: also make waiting stream rows due now."""

    changes: Mapping[str, Any]
    audit: Audit
    hurry_rows: bool = False


@dataclass(frozen=True)
class Refused(Rejected[Refusal]):
    """The action must not happen; ``detail`` says why."""


#: Stands for the database's ``now()`` in ``Accepted.changes``.
NOW = "now()"


def check_reason(reason: str, what: str) -> Refused | str:
    """The trimmed reason (``reasons.check_reason``), or its refusal as these acts' own."""
    checked = reasons.check_reason(reason, what)
    if isinstance(checked, reasons.ReasonRefused):
        return Refused(Refusal(checked.code), checked.detail)
    return checked


def _inputs(subject: Subject, **more: Any) -> dict[str, Any]:
    return {
        "subscriber": subject.name,
        "kind": subject.kind,
        "status_before": subject.status,
        "attempts": subject.attempts,
        **({"event_id": str(subject.failing_event_id)} if subject.failing_event_id else {}),
        **more,
    }


def decide_retry_now(subject: Subject, reason: str) -> Accepted | Refused:
    """A retrying or wedged subscriber makes one attempt at its failing event now. The
    attempts are kept: a wedged one that fails again stays wedged with one more; one
    that succeeds moves on. A stream-ordered reaction's rows waiting for a retry are
    made due now. Refused for a paused subscriber, or one with nothing to retry."""
    checked = check_reason(reason, "retry now")
    if isinstance(checked, Refused):
        return checked
    if subject.status == "paused":
        return Refused(
            Refusal.SUBSCRIBER_PAUSED, f"{subject.name} is paused: resume it before retrying."
        )
    if subject.status in ("retrying", "wedged"):
        return Accepted(
            changes={"status": "retrying", "next_retry_at": NOW},
            audit=Audit(CONTEXT, "RetriedNow", checked, _inputs(subject)),
        )
    if subject.retrying_rows:
        return Accepted(
            changes={},
            audit=Audit(
                CONTEXT, "RetriedNow", checked, _inputs(subject, rows=subject.retrying_rows)
            ),
            hurry_rows=True,
        )
    return Refused(
        Refusal.NOTHING_TO_RETRY,
        f"{subject.name} is {subject.status}: it has no failing event waiting for a retry.",
    )


def decide_pause(subject: Subject, reason: str, actor: str) -> Accepted | Refused:
    """Pause a subscriber that is not paused: no worker runs it until it is resumed; the
    status it had comes back on resume."""
    checked = check_reason(reason, "pause")
    if isinstance(checked, Refused):
        return checked
    if subject.status == "paused":
        return Refused(Refusal.ALREADY_PAUSED, f"{subject.name} is already paused.")
    return Accepted(
        changes={
            "status": "paused",
            "paused_from": subject.status,
            "paused_at": NOW,
            "paused_by": actor,
            "pause_reason": checked,
        },
        audit=Audit(CONTEXT, "Paused", checked, _inputs(subject)),
    )


def decide_resume(subject: Subject, reason: str) -> Accepted | Refused:
    """Resume a paused subscriber with the status it had when paused."""
    checked = check_reason(reason, "resume")
    if isinstance(checked, Refused):
        return checked
    if subject.status != "paused":
        return Refused(Refusal.NOT_PAUSED, f"{subject.name} is not paused.")
    back = subject.paused_from if subject.paused_from in ("retrying", "wedged") else "active"
    return Accepted(
        changes={
            "status": back,
            "paused_from": "",
            "paused_at": None,
            "paused_by": "",
            "pause_reason": "",
        },
        audit=Audit(CONTEXT, "Resumed", checked, _inputs(subject, status_after=back)),
    )
