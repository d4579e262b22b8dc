"""Failures in bulk: group failing items by error fingerprint, preview a group, then
dismiss or retry all of it.

A failing item is a subscriber retrying or wedged on an event, or the head event of a
stream parked for a stream-ordered reaction (which parks the stream instead of wedging).
A parked head is dismissed the way its own dismissal is (its work row deleted, one
``EventDismissed`` with ordering "stream") and retried the way "retry the stream now" is
(un-parked, attempts kept, one ``StreamRetried``). Acting on a group is
all-or-nothing (one transaction); each dismissed event gets its own decision, and the
group its own (context ``FailureGroup``). The number of items previewed must still
match (409 ``group_changed``), and a second operator acting on the same group at the
same moment is refused (409 ``group_busy``) rather than queued behind the first.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.backends.utils import CursorWrapper

from reactions_admin import errors
from reactions_admin.acts.act import REASON_REFUSALS, Family, OnFailureGroup
from reactions_admin.acts.decision import record
from reactions_admin.acts.dismissal.handler import dismiss_locked
from reactions_admin.acts.failure_groups.decider import FailingItem, GroupAccepted, decide_group
from reactions_admin.acts.failure_groups.fingerprint import Fingerprint, fingerprint
from reactions_admin.acts.operations.decider import Refused, decide_retry_now
from reactions_admin.acts.operations.handler import (
    OPERATION_STREAM,
    carry_out,
    lock_subject,
)
from reactions_admin.acts.parked_streams.handler import retry_stream_locked
from reactions_admin.acts.parked_streams.rows import locked_stream
from reactions_admin.acts.preamble import acting_transaction, admit, require_storable
from reactions_admin.acts.result import FieldsPayload
from reactions_admin.guards import (
    DISMISS_PERMISSION,
    OPERATE_PERMISSION,
    Actor,
    database_errors,
    require_durable_store,
)
from reactions_admin.reads.overview import authorize_view
from subscribers import sql
from subscribers.models import Bookmark
from subscribers.stream_work import parked_streams

#: A preview lists at most this many of a group's items.
PREVIEW_LIMIT = 100


@dataclass(frozen=True)
class FailureGroup:
    """Failing items that share one fingerprint."""

    fingerprint: Fingerprint
    items: tuple[FailingItem, ...]

    @property
    def count(self) -> int:
        return len(self.items)

    @property
    def sample_error(self) -> str:
        return self.items[0].error.strip().splitlines()[0] if self.items else ""

    @property
    def dismissable(self) -> bool:
        """Every item is a reaction's (a projection cannot skip an event)."""
        return all(item.kind == "reaction" for item in self.items)

    def as_json(self, *, limit: int = PREVIEW_LIMIT) -> dict[str, Any]:
        """The JSON form: the fingerprint, how many match, and the first ``limit`` items."""
        return {
            "fingerprint": self.fingerprint.id,
            "exception_type": self.fingerprint.exception_type,
            "pattern": self.fingerprint.pattern,
            "count": self.count,
            "dismissable": self.dismissable,
            "sample_error": self.sample_error,
            "subscribers": sorted({item.subscriber for item in self.items}),
            "items": [
                {
                    "subscriber": item.subscriber,
                    "kind": item.kind,
                    "event_id": str(item.event_id),
                    "stream_id": item.stream_id,
                    "error": item.error.strip().splitlines()[0] if item.error.strip() else "",
                }
                for item in self.items[:limit]
            ],
        }


@dataclass(frozen=True)
class GroupResult(FieldsPayload):
    """What acting on a group did."""

    fingerprint: str
    choice: str
    count: int
    decision_event_id: uuid.UUID
    item_decision_ids: tuple[uuid.UUID, ...]

    def text(self) -> str:
        """What it did, for a person."""
        verb = "Dismissed" if self.choice == "GroupDismissed" else "Retried"
        return (
            f"{verb} {self.count} item(s) of {self.fingerprint}. Decision {self.decision_event_id}."
        )


def _failing_bookmarks(cursor: CursorWrapper) -> list[FailingItem]:
    cursor.execute(sql.FAILING_BOOKMARKS)
    return [FailingItem(r[0], r[1], r[2], r[3]) for r in cursor.fetchall()]


def _parked_heads(names: Iterable[str]) -> list[FailingItem]:
    return [
        FailingItem(name, "reaction", parked.event_id, parked.last_error, parked.stream_id)
        for name in names
        for parked in parked_streams(name)
    ]


def _reaction_names() -> list[str]:
    return list(
        Bookmark.objects.filter(kind=Bookmark.Kind.REACTION)
        .order_by("subscriber_name")
        .values_list("subscriber_name", flat=True)
    )


def _items(*, lock: bool = False) -> list[FailingItem]:
    """Every failing item: retrying or wedged bookmarks, then parked stream heads.

    With ``lock``, in the order workers and the single acts take them (the bookmark row
    ``FOR UPDATE`` first, then the stream's work rows), so a group act cannot deadlock
    with them: every bookmark row concerned, by name, then each parked stream's rows. An
    item that appears after its bookmark was locked is left out (the count then tells).
    """
    with connection.cursor() as cursor:
        if not lock:
            return _failing_bookmarks(cursor) + _parked_heads(_reaction_names())
        seen = _failing_bookmarks(cursor) + _parked_heads(_reaction_names())
        locked = set(
            Bookmark.objects.select_for_update()
            .filter(subscriber_name__in=sorted({item.subscriber for item in seen}))
            .order_by("subscriber_name")
            .values_list("subscriber_name", flat=True)
        )
        items = [i for i in _failing_bookmarks(cursor) if i.subscriber in locked]
        parked = {i.subscriber for i in seen if i.stream_id is not None} & locked
        heads = sorted(_parked_heads(parked), key=lambda i: (i.subscriber, str(i.stream_id)))
        for head in heads:
            stream = locked_stream(head.subscriber, str(head.stream_id))
            # Still parked on the same head, now that its rows are locked.
            if stream and stream[0].parked and stream[0].event_id == head.event_id:
                items.append(head)
        return items


def group(items: Sequence[FailingItem]) -> list[FailureGroup]:
    """``items`` by fingerprint, the largest group first."""
    found: dict[str, tuple[Fingerprint, list[FailingItem]]] = {}
    for item in items:
        print_ = fingerprint(item.error)
        found.setdefault(print_.id, (print_, []))[1].append(item)
    groups = [FailureGroup(fp, tuple(members)) for fp, members in found.values()]
    return sorted(groups, key=lambda g: (-g.count, g.fingerprint.pattern))


def failure_groups(actor: Actor) -> list[FailureGroup]:
    """Every failure group now (view permission)."""
    authorize_view(actor)
    return read_groups_as_shell()


def read_groups_as_shell() -> list[FailureGroup]:
    """Every failure group, for the shell's account (``manage.py failures`` without ``--as``)."""
    require_durable_store()
    with database_errors():
        return group(_items())


def failure_group(fingerprint_id: str, actor: Actor) -> FailureGroup:
    """One group, for the preview (404 ``failure_group_not_found``)."""
    for found in failure_groups(actor):
        if found.fingerprint.id == fingerprint_id:
            return found
    raise errors.FailureGroupNotFound(f"No failing item has fingerprint {fingerprint_id!r}.")


def dismiss_failure_group(
    fingerprint_id: str, expected_count: int, reason: str, actor: Actor, *, via: str = "api"
) -> GroupResult:
    """Dismiss the failing event of every item in the group, all or nothing; each
    dismissal is its own decision. Needs ``reactions_admin.dismiss_event``."""
    return _act_on_group(fingerprint_id, expected_count, reason, actor, via, dismiss=True)


def retry_failure_group(
    fingerprint_id: str, expected_count: int, reason: str, actor: Actor, *, via: str = "api"
) -> GroupResult:
    """Retry now every item in the group (attempts kept), all or nothing. Needs
    ``reactions_admin.operate_subscriber``."""
    return _act_on_group(fingerprint_id, expected_count, reason, actor, via, dismiss=False)


def _act_on_group(
    fingerprint_id: str,
    expected_count: int,
    reason: str,
    actor: Actor,
    via: str,
    *,
    dismiss: bool,
) -> GroupResult:
    admit(actor, DISMISS_PERMISSION if dismiss else OPERATE_PERMISSION)
    require_storable(reason)
    correlation_id = uuid.uuid4()
    with acting_transaction() as cursor:
        cursor.execute(sql.TRY_LOCK_GROUP, {"key": f"eventdesk-failure-group:{fingerprint_id}"})
        if not cursor.fetchone()[0]:
            raise errors.FailureGroupBusy(
                f"Another operator is acting on failure group {fingerprint_id} right now."
            )
        members = [g for g in group(_items(lock=True)) if g.fingerprint.id == fingerprint_id]
        items = members[0].items if members else ()
        if not items and expected_count > 0:
            raise errors.FailureGroupChanged(
                f"No failing item has fingerprint {fingerprint_id} any more (another operator "
                f"acted, or they recovered); {expected_count} were previewed."
            )
        decision = decide_group(fingerprint_id, items, expected_count, reason, dismiss=dismiss)
        if isinstance(decision, Refused):
            raise errors.from_rejection(decision)
        item_decisions = (
            _dismiss_each(decision, actor, via, correlation_id)
            if dismiss
            else _retry_each(decision, actor, via, correlation_id)
        )
        recorded = record(
            OPERATION_STREAM, decision.audit, actor, via, correlation_id=correlation_id
        )
    return GroupResult(
        fingerprint_id, decision.audit.choice, len(items), recorded.event_id, item_decisions
    )


def _dismiss_each(
    decision: GroupAccepted, actor: Actor, via: str, correlation_id: uuid.UUID
) -> tuple[uuid.UUID, ...]:
    ids = []
    for item in decision.items:
        result = dismiss_locked(
            item.subscriber, item.event_id, decision.audit.reason, actor, via, correlation_id
        )
        ids.append(result.decision_event_id)
    return tuple(ids)


def _retry_each(
    decision: GroupAccepted, actor: Actor, via: str, correlation_id: uuid.UUID
) -> tuple[uuid.UUID, ...]:
    """Retry every item now; returns the ``StreamRetried`` decisions of the parked heads
    (a bookmark's retry is recorded by the group's decision alone)."""
    ids = []
    for item in decision.items:
        if item.stream_id is not None:
            result = retry_stream_locked(
                item.subscriber, item.stream_id, decision.audit.reason, actor, via, correlation_id
            )
            ids.append(result.decision_event_id)
            continue
        subject = lock_subject(item.subscriber)
        accepted = decide_retry_now(subject, decision.audit.reason)
        if isinstance(accepted, Refused):
            raise errors.from_rejection(accepted)
        carry_out(subject, accepted)
    return tuple(ids)


#: Every act on a failure group: the group as previewed, and a reason.
FAILURE_GROUPS = Family(
    OnFailureGroup,
    DISMISS_PERMISSION,
    (*REASON_REFUSALS, errors.FailureGroupChanged, errors.FailureGroupBusy),
)

DISMISS_FAILURE_GROUP = FAILURE_GROUPS.act(
    "dismiss_failure_group", "Dismiss the group", dismiss_failure_group, GroupResult,
    errors.NotDismissable,
    # Each item's own dismissal (``dismiss_locked``), under the group's locks.
    errors.ReactionNotFound, errors.EventNotFound, errors.RewindRefused,
    errors.EventNotVisibleYet, errors.StreamRefused,
    destructive=True,
)  # fmt: skip
RETRY_FAILURE_GROUP = FAILURE_GROUPS.act(
    "retry_failure_group", "Retry the group", retry_failure_group, GroupResult,
    # Each item's own retry, under the group's locks.
    errors.SubscriberNotFound, errors.ReactionNotFound, errors.NothingToRetry,
    errors.SubscriberPaused, errors.StreamRefused,
    permission=OPERATE_PERMISSION,
)  # fmt: skip
