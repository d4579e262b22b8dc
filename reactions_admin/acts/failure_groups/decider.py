"""The failure groups' rule: act on a group only as the operator previewed it. Pure (no
Django); it answers in the operations' values (``Audit``, ``Refused``)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reactions_admin.acts.operations.decider import Audit, Refusal, Refused, check_reason

#: The context of a group's own decision.
BULK_CONTEXT = "FailureGroup"


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
