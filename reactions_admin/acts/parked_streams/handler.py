"""The operator's acts on a stream-ordered reaction's parked streams, one handler each:

* :func:`dismiss_stream_head`: the head event of a parked stream, named by its stream
  (the dismissal, ``acts/dismissal/handler.py``, calls :func:`dismiss_head_locked` when
  it is given the head's event id);
* :func:`dismiss_parked_stream`: the head and every event waiting behind it, one reason,
  one decision per event, all or nothing;
* :func:`retry_parked_stream`: the head runs again now (attempts kept), the rest follow.

Each runs the preamble (``acts/preamble.py``: authorize, the durable store, one
transaction, the bookmark row locked or 404), refuses a reaction that keeps global order
(409), locks the stream's rows ``FOR UPDATE``, asks the pure decider (``decider.py``: 400
for the reason, 409 with a code saying why), then changes the rows and appends the
decisions in the same transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from eventstore.store import get_event_store
from eventstore.types import RecordedEvent
from reactions_admin import errors
from reactions_admin.acts.act import REASON_REFUSALS, Family, OnStream
from reactions_admin.acts.decision import record
from reactions_admin.acts.dismissal.audit import record_dismissal
from reactions_admin.acts.dismissal.decider import DismissalResult
from reactions_admin.acts.operations.decider import Audit
from reactions_admin.acts.parked_streams.decider import (
    EventsDismissed,
    StreamRejected,
    StreamRetried,
    TargetEvent,
    decide_head_dismissal,
    decide_reason,
    decide_stream_dismissal,
    decide_stream_retry,
)
from reactions_admin.acts.parked_streams.rows import (
    delete_rows,
    locked_stream,
    stream_head,
    unpark_head,
)
from reactions_admin.acts.preamble import (
    acting_transaction,
    admit,
    locked_reaction,
    require_storable,
)
from reactions_admin.acts.result import FieldsPayload
from reactions_admin.guards import DISMISS_PERMISSION, OPERATE_PERMISSION, Actor, is_storable
from reactions_admin.reads.reactions import is_stream_ordered
from subscribers.models import Bookmark
from subscribers.registry import handled_event_types

#: Retries of parked streams are recorded on this stream (dismissals on DECISION_STREAM).
RETRY_STREAM = "decisions-parked-stream-retry"

T = TypeVar("T")


@dataclass(frozen=True)
class StreamDismissalResult:
    """What dismissing a whole parked stream did: one decision per event, head first."""

    subscriber_name: str
    stream_id: str
    dismissed: tuple[DismissalResult, ...]

    def text(self) -> str:
        """What it did, for a person."""
        return (
            f"Dismissed stream {self.stream_id!r} in {self.subscriber_name}: "
            f"{len(self.dismissed)} event(s), one decision each."
        )

    def as_payload(self) -> dict[str, Any]:
        """The JSON form every door returns."""
        return {
            "subscriber_name": self.subscriber_name,
            "stream_id": self.stream_id,
            "events_dismissed": len(self.dismissed),
            "dismissed": [result.as_payload() for result in self.dismissed],
        }


@dataclass(frozen=True)
class StreamRetryResult(FieldsPayload):
    """What retrying a parked stream did."""

    decision_event_id: uuid.UUID
    subscriber_name: str
    stream_id: str
    event_id: uuid.UUID
    attempts: int
    waiting: int

    def text(self) -> str:
        """What it did, for a person."""
        return (
            f"Retrying stream {self.stream_id!r} in {self.subscriber_name} now (event "
            f"{self.event_id}, attempt {self.attempts + 1}); {self.waiting} event(s) follow. "
            f"Decision {self.decision_event_id}."
        )


def dismiss_stream_head(
    subscriber_name: str,
    stream_id: str,
    reason: str,
    actor: Actor,
    *,
    via: str = "api",
) -> DismissalResult:
    """Dismiss the head event of a parked stream (the next event of the stream becomes the
    head and runs), audited: the dismissal of that event, named by its stream."""
    admit(actor, DISMISS_PERMISSION)
    with acting_transaction():
        bookmark = _locked_stream_reaction(subscriber_name)
        head_id = stream_head(subscriber_name, stream_id) if is_storable(stream_id) else None
        head = None if head_id is None else get_event_store().get_event(head_id)
        if head is None:
            raise errors.StreamNotParked(
                f"Stream {stream_id!r} has no unfinished event for {subscriber_name}."
            )
        require_storable(reason)
        return dismiss_head_locked(bookmark, head, reason, actor, via, uuid.uuid4())


def dismiss_head_locked(
    bookmark: Bookmark,
    event: RecordedEvent,
    reason: str,
    actor: Actor,
    via: str,
    correlation_id: uuid.UUID,
) -> DismissalResult:
    """Dismiss ``event`` in a stream-ordered reaction whose bookmark row the caller's
    transaction holds: the reason (400), lock the stream's rows, the decider (409: only
    the head of a parked stream), then delete the head's row and append its decision."""
    trimmed = _accepted(decide_reason(reason))
    name = bookmark.subscriber_name
    stream = locked_stream(name, event.stream_id)
    target = TargetEvent(event.event_id, event.event_type, event.stream_id, event.cursor)
    decision = _accepted(
        decide_head_dismissal(
            name, bookmark.cursor, target, handled_event_types(name), stream, trimmed
        )
    )
    [result] = _dismiss_rows(decision, actor, via, correlation_id)
    return result


def dismiss_parked_stream(
    subscriber_name: str,
    stream_id: str,
    reason: str,
    actor: Actor,
    *,
    via: str = "api",
    correlation_id: uuid.UUID | None = None,
) -> StreamDismissalResult:
    """Dismiss a whole parked stream: its head and every event waiting behind it, with
    one reason and one ``EventDismissed`` decision per event, all or nothing."""
    admit(actor, DISMISS_PERMISSION)
    require_storable(reason)
    # A stream id PostgreSQL cannot store names no stream: refused as not parked, in order.
    wanted = stream_id if is_storable(stream_id) else ""
    with acting_transaction():
        _locked_stream_reaction(subscriber_name)
        trimmed = _accepted(decide_reason(reason))
        stream = locked_stream(subscriber_name, wanted)
        decision = _accepted(decide_stream_dismissal(subscriber_name, stream_id, stream, trimmed))
        dismissed = _dismiss_rows(decision, actor, via, correlation_id or uuid.uuid4())
    return StreamDismissalResult(subscriber_name, stream_id, dismissed)


def retry_parked_stream(
    subscriber_name: str,
    stream_id: str,
    actor: Actor,
    *,
    reason: str = "",
    via: str = "api",
    correlation_id: uuid.UUID | None = None,
) -> StreamRetryResult:
    """Retry a parked stream now: its head runs again at once, with its attempt count kept
    (one more failure parks it again), and the events behind it follow in order. The
    reason is optional."""
    admit(actor, OPERATE_PERMISSION)
    require_storable(reason)
    with acting_transaction():
        return retry_stream_locked(
            subscriber_name, stream_id, reason, actor, via, correlation_id or uuid.uuid4()
        )


def retry_stream_locked(
    subscriber_name: str,
    stream_id: str,
    reason: str,
    actor: Actor,
    via: str,
    correlation_id: uuid.UUID,
) -> StreamRetryResult:
    """Retry one parked stream inside the caller's transaction, for a caller that has
    authorized it already (retrying a failure group: all of them land, or none): lock the
    bookmark row (404, 409 ``not_stream_ordered``), then the stream's rows, ask the
    decider (409 ``stream_not_parked``), un-park the head (attempts kept) and audit."""
    # A stream id PostgreSQL cannot store names no stream: refused as not parked, in order.
    wanted = stream_id if is_storable(stream_id) else ""
    _locked_stream_reaction(subscriber_name)
    trimmed = _accepted(decide_reason(reason, required=False))
    stream = locked_stream(subscriber_name, wanted)
    decision: StreamRetried = _accepted(
        decide_stream_retry(subscriber_name, stream_id, stream, trimmed)
    )
    head = decision.head.event_id
    unpark_head(subscriber_name, head)
    audit = Audit("ParkedStreamRetry", "StreamRetried", decision.reason, decision.inputs())
    recorded = record(
        RETRY_STREAM, audit, actor, via, correlation_id=correlation_id, causation_id=head
    )
    return StreamRetryResult(
        recorded.event_id,
        subscriber_name,
        stream_id,
        decision.head.event_id,
        decision.head.attempts,
        decision.waiting,
    )


def _locked_stream_reaction(name: str) -> Bookmark:
    """The reaction's bookmark row, locked (404); 409 ``reaction_not_stream_ordered``
    when it keeps global order."""
    bookmark = locked_reaction(name)
    if not is_stream_ordered(name):
        raise errors.NotStreamOrdered(
            f"{name} keeps global order: it parks no stream (a failure wedges the whole"
            " reaction). Dismiss its failing event instead."
        )
    return bookmark


def _accepted(decision: T | StreamRejected) -> T:
    """``decision`` unless it is a ``StreamRejected``, which is raised as its error."""
    if isinstance(decision, StreamRejected):
        raise errors.from_rejection(decision)
    return decision


def _dismiss_rows(
    decision: EventsDismissed, actor: Actor, via: str, correlation_id: uuid.UUID
) -> tuple[DismissalResult, ...]:
    """Delete the decided rows and append one ``EventDismissed`` per event, in the
    caller's transaction (both land or neither does)."""
    delete_rows(decision.reaction, [item.event_id for item in decision.items])
    results = []
    for item in decision.items:
        inputs = decision.inputs(item)
        recorded = record_dismissal(
            item.event_id, decision.reason, inputs, actor, via, correlation_id
        )
        results.append(
            DismissalResult(
                decision_event_id=recorded.event_id,
                subscriber_name=decision.reaction,
                event_id=item.event_id,
                cursor_before=item.cursor,
                cursor_after=item.cursor,
                events_passed_over=1,
                handled_events_passed_over=1,
                ordering="stream",
                stream_id=decision.stream_id,
            )
        )
    return tuple(results)


#: Every act on a parked stream: the reaction, the stream and a reason (optional to
#: retry); the reaction must be stream-ordered and the stream parked.
DISMISSING = Family(
    OnStream,
    DISMISS_PERMISSION,
    (*REASON_REFUSALS, errors.ReactionNotFound, errors.StreamRefused),
)
RETRYING = replace(DISMISSING, permission=OPERATE_PERMISSION, refusals=DISMISSING.refusals[1:])

DISMISS_STREAM_HEAD = DISMISSING.act(
    "dismiss_stream_head", "Dismiss the head event", dismiss_stream_head, DismissalResult,
    destructive=True,
)  # fmt: skip
DISMISS_PARKED_STREAM = DISMISSING.act(
    "dismiss_parked_stream", "Dismiss the whole stream", dismiss_parked_stream,
    StreamDismissalResult,
    destructive=True,
)  # fmt: skip
RETRY_PARKED_STREAM = RETRYING.act(
    "retry_parked_stream", "Retry the stream now", retry_parked_stream, StreamRetryResult
)
