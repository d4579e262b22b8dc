"""The operator actions' rules: pure functions from what the handler found to a decision
that carries the bookmark's new state and the audit event's data, or a rejection.

Retry now, pause, resume, and acting on a group of failures by fingerprint. Like the
dismissal decider, this imports nothing from Django and never raises.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reactions_admin.acts.dismissal.decider import MAX_REASON_LENGTH, has_visible_character

#: The ``context`` of every decision these actions record.
CONTEXT = "SubscriberOperation"
BULK_CONTEXT = "FailureGroup"


class Refusal(enum.Enum):
    """Why an action is refused; the value is the stable error code."""

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
class Refused:
    """The action must not happen; ``detail`` says why."""

    refusal: Refusal
    detail: str


#: Stands for the database's ``now()`` in ``Accepted.changes``.
NOW = "now()"


def check_reason(reason: str, what: str) -> Refused | str:
    """The trimmed reason, or the refusal (no visible character; too long)."""
    if not has_visible_character(reason):
        return Refused(Refusal.REASON_REQUIRED, f"A reason is required to {what}.")
    trimmed = reason.strip()
    if len(trimmed) > MAX_REASON_LENGTH:
        return Refused(
            Refusal.REASON_TOO_LONG,
            f"The reason is {len(trimmed)} characters; at most {MAX_REASON_LENGTH} are allowed.",
        )
    return trimmed


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


@dataclass(frozen=True)
class FailingItem:
    """One failing event of a group: which subscriber, which event, of what kind; for the
    head of a parked stream (a stream-ordered reaction), which stream."""

    subscriber: str
    kind: str
    event_id: uuid.UUID
    error: str
    stream_id: str | None = None


@dataclass(frozen=True)
class GroupAccepted:
    """Act on every item of the group; ``audit`` is the group's own decision (each
    dismissed event also gets its own)."""

    items: tuple[FailingItem, ...]
    audit: Audit
    choice_per_item: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


def _item_inputs(item: FailingItem) -> dict[str, str]:
    inputs = {"subscriber": item.subscriber, "event_id": str(item.event_id)}
    if item.stream_id is not None:
        inputs["stream_id"] = item.stream_id
    return inputs


def decide_group(
    fingerprint: str,
    items: Sequence[FailingItem],
    expected_count: int,
    reason: str,
    *,
    dismiss: bool,
) -> GroupAccepted | Refused:
    """Act on a failure group only as it was previewed: the number of matching items must
    still be ``expected_count`` (another operator may have acted, or new failures come
    in). Dismissing needs every item to be a reaction's (a projection cannot skip)."""
    checked = check_reason(reason, "act on a failure group")
    if isinstance(checked, Refused):
        return checked
    if len(items) != expected_count:
        return Refused(
            Refusal.GROUP_CHANGED,
            f"{len(items)} failing item(s) match fingerprint {fingerprint} now, not the "
            f"{expected_count} previewed: look again before acting.",
        )
    if dismiss:
        projections = sorted({item.subscriber for item in items if item.kind != "reaction"})
        if projections:
            return Refused(
                Refusal.NOT_DISMISSABLE,
                "A projection applies every event: its failures cannot be dismissed "
                f"({', '.join(projections)}). Retry them, or fix the projection.",
            )
    choice = "GroupDismissed" if dismiss else "GroupRetried"
    return GroupAccepted(
        items=tuple(items),
        audit=Audit(
            BULK_CONTEXT,
            choice,
            checked,
            {
                "fingerprint": fingerprint,
                "count": len(items),
                "items": [_item_inputs(i) for i in items],
            },
        ),
    )
