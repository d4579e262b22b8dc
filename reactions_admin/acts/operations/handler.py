"""The operator's acts on one subscriber: retry now, pause, resume (``RETRY_NOW``,
``PAUSE``, ``RESUME``, declared at the end).

Each runs the preamble (``acts/preamble.py``: ``reactions_admin.operate_subscriber``, the
durable store, one transaction), locks the bookmark row (404), asks the pure decider
(``decider.py``), carries out its changes and appends its ``DecisionRegistered`` in the
same transaction; then wakes the workers.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import connection

from reactions_admin import errors
from reactions_admin.acts.act import REASON_REFUSALS, Family, OnSubscriber
from reactions_admin.acts.decision import record
from reactions_admin.acts.operations.decider import (
    Accepted,
    Refused,
    Subject,
    decide_pause,
    decide_resume,
    decide_retry_now,
)
from reactions_admin.acts.preamble import acting_transaction, admit, require_storable
from reactions_admin.acts.result import FieldsPayload
from reactions_admin.guards import OPERATE_PERMISSION, Actor, is_storable
from subscribers import sql

#: Every operation on a subscriber is appended to this stream (one audit trail, in order).
OPERATION_STREAM = "decisions-subscriber-operations"


@dataclass(frozen=True)
class ActionResult(FieldsPayload):
    """What an accepted action did."""

    decision_event_id: uuid.UUID
    subscriber_name: str
    choice: str
    status_before: str
    status_after: str

    def text(self) -> str:
        """What it did, for a person: "Pause: mailer wedged → paused. Decision …"."""
        return (
            f"{_SAID[self.choice]}: {self.subscriber_name} {self.status_before} → "
            f"{self.status_after}. Decision {self.decision_event_id}."
        )


#: Each operation's choice, as an operator names the act.
_SAID = {"RetriedNow": "Retry now", "Paused": "Pause", "Resumed": "Resume"}


def lock_subject(name: str) -> Subject:
    """The bookmark ``name``, locked for the caller's transaction (404 when unknown)."""
    row = None
    if is_storable(name):
        with connection.cursor() as cursor:
            cursor.execute(sql.LOCK_FOR_ACTION, {"name": name})
            row = cursor.fetchone()
    if row is None:
        raise errors.SubscriberNotFound(f"No subscriber named {name!r}.")
    return Subject(row[0], row[1], row[2], int(row[3]), row[4], row[5], int(row[6]))


def carry_out(subject: Subject, accepted: Accepted) -> str:
    """Apply an accepted decision's changes to the locked bookmark; return the status after."""
    changes = accepted.changes
    with connection.cursor() as cursor:
        if changes.get("status") == "retrying":
            cursor.execute(sql.RETRY_NOW, {"name": subject.name})
        elif changes.get("status") == "paused":
            cursor.execute(
                sql.PAUSE,
                {
                    "name": subject.name,
                    "paused_from": changes["paused_from"],
                    "paused_by": changes["paused_by"],
                    "reason": changes["pause_reason"],
                },
            )
        elif "status" in changes:
            cursor.execute(sql.RESUME, {"name": subject.name, "status": changes["status"]})
        if accepted.hurry_rows:
            cursor.execute(sql.RETRY_ROWS_NOW, {"name": subject.name})
        # Sent at commit: the worker's loops look again now rather than at their next poll.
        cursor.execute(sql.WAKE_WORKERS)
    return str(changes.get("status", subject.status))


def _act(
    action: str,
    subscriber_name: str,
    reason: str,
    actor: Actor,
    via: str,
) -> ActionResult:
    admit(actor, OPERATE_PERMISSION)
    require_storable(reason)
    with acting_transaction():
        subject = lock_subject(subscriber_name)
        if action == "retry":
            decision = decide_retry_now(subject, reason)
        elif action == "pause":
            decision = decide_pause(subject, reason, actor.get_username())
        else:
            decision = decide_resume(subject, reason)
        if isinstance(decision, Refused):
            raise errors.from_rejection(decision)
        after = carry_out(subject, decision)
        recorded = record(
            OPERATION_STREAM, decision.audit, actor, via, causation_id=subject.failing_event_id
        )
    return ActionResult(
        recorded.event_id, subscriber_name, decision.audit.choice, subject.status, after
    )


def retry_now(subscriber_name: str, reason: str, actor: Actor, *, via: str = "api") -> ActionResult:
    """Retry now: a retrying or wedged subscriber makes one attempt at its failing event at
    once, keeping its attempt count (a wedged one that fails again stays wedged, with one
    more attempt; one that succeeds moves on)."""
    return _act("retry", subscriber_name, reason, actor, via)


def pause(subscriber_name: str, reason: str, actor: Actor, *, via: str = "api") -> ActionResult:
    """Pause a subscriber: from the commit on, no worker starts work for it until it is
    resumed; work in flight finishes (its result lands; a failure keeps the pause)."""
    return _act("pause", subscriber_name, reason, actor, via)


def resume(subscriber_name: str, reason: str, actor: Actor, *, via: str = "api") -> ActionResult:
    """Resume a paused subscriber with the status it had (active, retrying or wedged)."""
    return _act("resume", subscriber_name, reason, actor, via)


#: Every operation on a subscriber: its name and a reason; an unknown subscriber is 404.
OPERATIONS = Family(OnSubscriber, OPERATE_PERMISSION, (*REASON_REFUSALS, errors.SubscriberNotFound))

RETRY_NOW = OPERATIONS.act(
    "retry_subscriber_now",
    "Retry now",
    retry_now,
    ActionResult,
    errors.NothingToRetry,
    errors.SubscriberPaused,
)
PAUSE = OPERATIONS.act("pause_subscriber", "Pause", pause, ActionResult, errors.AlreadyPaused)
RESUME = OPERATIONS.act("resume_subscriber", "Resume", resume, ActionResult, errors.NotPaused)
