"""The operator's acts on a stream-ordered reaction's parked streams, one handler each.

* dismissing the parked head event: ``dismiss_event_in_reaction`` (acts/dismissal/handler.py)
  calls :func:`dismiss_head_locked` for a stream-ordered reaction, with the bookmark row
  already locked; :func:`dismiss_stream_head` names the head by its stream;
* :func:`dismiss_parked_stream`: the head and every event waiting behind it, one reason,
  one decision per event, all or nothing;
* :func:`retry_parked_stream`: the head runs again now (attempts kept), the rest follow;
* :func:`list_parked_streams`: what is parked, for every door.

Each runs the shape of the dismissal: authorize (403), refuse the in-memory store (503),
lock the bookmark row ``FOR UPDATE`` (the worker's intake and claims take the same lock),
404, 400 for the reason, lock the stream's rows ``FOR UPDATE``, ask the pure decider
(409 with a code saying why), then change the rows and append the decisions in the same
transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper

from eventstore.decisions import register_decision
from reactions_admin import errors
from reactions_admin.acts.dismissal.handler import (
    DISMISS_PERMISSION,
    LOCK_TIMEOUT,
    Actor,
    DismissalResult,
    authorize,
    dismiss_event_in_reaction,
    dismiss_rows,
    is_storable,
    require_durable_store,
    require_storable_reason,
)
from reactions_admin.acts.parked_streams.decider import (
    StreamRetried,
    decide_reason,
    decide_stream_dismissal,
    decide_stream_retry,
)
from reactions_admin.acts.parked_streams.rows import accepted, is_stream_ordered, locked_stream
from reactions_admin.guards import database_errors
from reactions_admin.reads.reactions import VIEW_PERMISSIONS
from subscribers import sql
from subscribers.models import Bookmark
from subscribers.stream_work import ParkedStream, parked_streams

#: Retrying a parked stream (and, with issue 11, retry, pause and resume) needs this.
OPERATE_PERMISSION = "reactions_admin.operate_subscriber"
#: Retries of parked streams are recorded on this stream (dismissals on DECISION_STREAM).
RETRY_STREAM = "decisions-parked-stream-retry"

T = TypeVar("T")


@dataclass(frozen=True)
class StreamDismissalResult:
    """What dismissing a whole parked stream did: one decision per event, head first."""

    subscriber_name: str
    stream_id: str
    dismissed: tuple[DismissalResult, ...]

    def as_payload(self) -> dict[str, Any]:
        """The JSON form every door returns."""
        return {
            "subscriber_name": self.subscriber_name,
            "stream_id": self.stream_id,
            "events_dismissed": len(self.dismissed),
            "dismissed": [result.as_payload() for result in self.dismissed],
        }


@dataclass(frozen=True)
class StreamRetryResult:
    """What retrying a parked stream did."""

    decision_event_id: uuid.UUID
    subscriber_name: str
    stream_id: str
    event_id: uuid.UUID
    attempts: int
    waiting: int

    def as_payload(self) -> dict[str, Any]:
        """The JSON form every door returns."""
        return {
            "decision_event_id": str(self.decision_event_id),
            "subscriber_name": self.subscriber_name,
            "stream_id": self.stream_id,
            "event_id": str(self.event_id),
            "attempts": self.attempts,
            "waiting": self.waiting,
        }


def parked_payload(parked: ParkedStream) -> dict[str, Any]:
    """One parked stream as JSON (REST, MCP)."""
    return {
        "stream_id": parked.stream_id,
        "event_id": str(parked.event_id),
        "event_type": parked.event_type,
        "cursor": {
            "transaction_id": parked.cursor.transaction_id,
            "position": parked.cursor.position,
        },
        "attempts": parked.attempts,
        "last_error": parked.last_error,
        "parked_at": parked.parked_at.isoformat(),
        "first_parked_at": parked.first_parked_at.isoformat(),
        "waiting": parked.waiting,
    }


# -- the shell's pieces -------------------------------------------------------------------------


_database_errors = database_errors


def _locked_bookmark(cursor: CursorWrapper, name: str) -> Bookmark:
    # A worker holds the row only for a short intake and claim; waiting longer than this
    # means something is wrong, and the operator should hear so.
    cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    bookmark = (
        Bookmark.objects.select_for_update()
        .filter(subscriber_name=name, kind=Bookmark.Kind.REACTION)
        .first()
    )
    if bookmark is None:
        raise errors.ReactionNotFound(f"No reaction named {name!r}.")
    _require_stream_ordered(name)
    return bookmark


def _require_stream_ordered(name: str) -> None:
    if not is_stream_ordered(name):
        raise errors.NotStreamOrdered(
            f"{name} keeps global order: it parks no stream (a failure wedges the whole"
            " reaction). Dismiss its failing event instead."
        )


# -- the handlers ---------------------------------------------------------------------------------


def _act(name: str, actor: Actor, permission: str, reason: str, work: Callable[[], T]) -> T:
    """The common start of every act on a stream: 403, 503, then ``work`` (in atomic())."""
    authorize(actor, permission)
    require_durable_store()
    require_storable_reason(reason)
    if not is_storable(name):
        raise errors.ReactionNotFound(f"No reaction named {name!r}.")
    with _database_errors():
        return work()


def dismiss_parked_stream(
    subscriber_name: str,
    stream_id: str,
    reason: str,
    actor: Actor,
    *,
    via: str = "api",
    correlation_id: uuid.UUID | None = None,
) -> StreamDismissalResult:
    """Dismiss the whole parked stream ``stream_id``: its head and every event waiting
    behind it, with one reason and one ``EventDismissed`` decision per event, all or
    nothing. Needs ``reactions_admin.dismiss_event``. 409 ``stream_not_parked`` when the
    stream is not parked (or has no unfinished event)."""
    correlation = correlation_id or uuid.uuid4()
    # A stream id PostgreSQL cannot store names no stream: refused as not parked, in order.
    wanted = stream_id if is_storable(stream_id) else ""

    def work() -> StreamDismissalResult:
        with transaction.atomic(), connection.cursor() as cursor:
            bookmark = _locked_bookmark(cursor, subscriber_name)
            trimmed = accepted(decide_reason(reason))
            stream = locked_stream(cursor, subscriber_name, wanted)
            decision = accepted(
                decide_stream_dismissal(bookmark.subscriber_name, stream_id, stream, trimmed)
            )
            dismissed = dismiss_rows(cursor, decision, actor, via, correlation)
        return StreamDismissalResult(subscriber_name, stream_id, dismissed)

    return _act(subscriber_name, actor, DISMISS_PERMISSION, reason, work)


def retry_parked_stream(
    subscriber_name: str,
    stream_id: str,
    actor: Actor,
    *,
    reason: str = "",
    via: str = "api",
    correlation_id: uuid.UUID | None = None,
) -> StreamRetryResult:
    """Retry the parked stream ``stream_id`` now: un-park its head so a worker runs it at
    once, and the events behind it follow in order. The head's attempt count is kept (issue
    11's "retry now": one more attempt, no reset), so a failure parks the stream again at
    once. Audited (``ParkedStreamRetry`` / ``StreamRetried``); the reason is optional.
    Needs ``reactions_admin.operate_subscriber``."""
    correlation = correlation_id or uuid.uuid4()

    def work() -> StreamRetryResult:
        with transaction.atomic(), connection.cursor() as cursor:
            return retry_stream_locked(
                cursor, subscriber_name, stream_id, reason, actor, via, correlation
            )

    return _act(subscriber_name, actor, OPERATE_PERMISSION, reason, work)


def retry_stream_locked(
    cursor: CursorWrapper,
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
    _locked_bookmark(cursor, subscriber_name)
    trimmed = accepted(decide_reason(reason, required=False))
    stream = locked_stream(cursor, subscriber_name, wanted)
    decision: StreamRetried = accepted(
        decide_stream_retry(subscriber_name, stream_id, stream, trimmed)
    )
    cursor.execute(
        sql.UNPARK_STREAM_HEAD,
        {"name": subscriber_name, "event_id": decision.head.event_id},
    )
    recorded = register_decision(
        RETRY_STREAM,
        context="ParkedStreamRetry",
        choice="StreamRetried",
        reason=decision.reason,
        actor=actor,
        inputs=decision.inputs(),
        via=via,
        correlation_id=correlation_id,
        causation_id=decision.head.event_id,
    )
    return StreamRetryResult(
        recorded.event_id,
        subscriber_name,
        stream_id,
        decision.head.event_id,
        decision.head.attempts,
        decision.waiting,
    )


def dismiss_stream_head(
    subscriber_name: str,
    stream_id: str,
    reason: str,
    actor: Actor,
    *,
    via: str = "api",
) -> DismissalResult:
    """Dismiss the head event of parked stream ``stream_id``: names the head, then
    ``dismiss_event_in_reaction`` checks everything again under its locks."""
    authorize(actor, DISMISS_PERMISSION)
    require_durable_store()
    if not is_storable(subscriber_name):
        raise errors.ReactionNotFound(f"No reaction named {subscriber_name!r}.")
    with _database_errors():
        if not Bookmark.objects.filter(
            subscriber_name=subscriber_name, kind=Bookmark.Kind.REACTION
        ).exists():
            raise errors.ReactionNotFound(f"No reaction named {subscriber_name!r}.")
        _require_stream_ordered(subscriber_name)
        head = None
        if is_storable(stream_id):
            with connection.cursor() as cursor:
                cursor.execute(sql.STREAM_HEAD, {"name": subscriber_name, "stream": stream_id})
                head = cursor.fetchone()
    if head is None:
        raise errors.StreamNotParked(
            f"Stream {stream_id!r} has no unfinished event for {subscriber_name}."
        )
    return dismiss_event_in_reaction(subscriber_name, head[0], reason, actor, via=via)


def list_parked_streams(subscriber_name: str, actor: Actor) -> list[dict[str, Any]]:
    """The parked streams of reaction ``subscriber_name``, the longest parked first: the
    stream, its head event, error, attempts, since when, how many wait behind. Needs a
    permission to read reactions (or to operate them)."""
    if not actor.is_authenticated or not actor.is_active:
        raise errors.NotAuthenticated("Authentication is required.")
    if not any(actor.has_perm(p) for p in (*VIEW_PERMISSIONS, OPERATE_PERMISSION)):
        raise errors.PermissionDenied("You may not view reactions.")
    require_durable_store()
    if not is_storable(subscriber_name):
        raise errors.ReactionNotFound(f"No reaction named {subscriber_name!r}.")
    with _database_errors():
        if not Bookmark.objects.filter(
            subscriber_name=subscriber_name, kind=Bookmark.Kind.REACTION
        ).exists():
            raise errors.ReactionNotFound(f"No reaction named {subscriber_name!r}.")
        return [parked_payload(parked) for parked in parked_streams(subscriber_name)]
