"""The one error hierarchy of the operator slice.

Every refusal is a ``ReactionsError`` carrying an HTTP status and a stable
``code``. Each door maps the base class once: the REST API to a JSON
``{"code", "detail"}`` response, the admin to a message, the MCP tool to a
tool error, the CLI to a non-zero exit.
"""

from __future__ import annotations

from typing import Any, ClassVar

from reactions_admin.acts.dismissal.decider import DismissalRejected, Rejection
from reactions_admin.acts.parked_streams.decider import StreamRefusal, StreamRejected


class ReactionsError(Exception):
    """Base of every refusal; ``status`` is the HTTP status, ``code`` the stable identifier."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def as_payload(self) -> dict[str, Any]:
        """The JSON body every door shows: ``{"code", "detail"}``."""
        return {"code": self.code, "detail": self.detail}


class NotAuthenticated(ReactionsError):
    """No credentials, or credentials that do not identify an active user."""

    status, code = 401, "not_authenticated"


class PermissionDenied(ReactionsError):
    """The user lacks the permission this operation requires."""

    status, code = 403, "permission_denied"


class CsrfFailed(ReactionsError):
    """A session-authenticated write without a valid CSRF token."""

    status, code = 403, "csrf_failed"


class ReactionNotFound(ReactionsError):
    """No reaction by that name (a projection's name counts as unknown)."""

    status, code = 404, "reaction_not_found"


class EventNotFound(ReactionsError):
    """No event with that id."""

    status, code = 404, "event_not_found"


class InvalidRequest(ReactionsError):
    """The request is malformed."""

    status, code = 400, "invalid_request"


class InvalidEventId(InvalidRequest):
    """The event id is not a UUID."""

    code = "invalid_event_id"


class UnstorableText(InvalidRequest):
    """Text PostgreSQL cannot store: a NUL character or a lone UTF-16 surrogate."""

    code = "unstorable_text"


class ReasonRequired(InvalidRequest):
    """The reason has no visible character (empty, whitespace, zero-width characters...)."""

    code = "reason_required"


class ReasonTooLong(InvalidRequest):
    """The reason is longer than the cap."""

    code = "reason_too_long"


class RevocationFinal(ReactionsError):
    """A revoked API token cannot be brought back: its ``revoked_at`` never changes again."""

    status, code = 409, "revocation_final"


class RevocationNotAudited(ReactionsError):
    """A token is revoked only by ``reactions_admin.acts.tokens`` (audited): setting
    ``revoked_at`` any other way, or deleting a live token, is refused by the database."""

    status, code = 409, "revocation_not_audited"


class RequestTooLarge(ReactionsError):
    """The request body is over Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE``."""

    status, code = 413, "request_too_large"


class RewindRefused(ReactionsError):
    """The event is not strictly after the bookmark: dismissals never move a bookmark back."""

    status, code = 409, "rewind_refused"


class EventAlreadyDismissed(RewindRefused):
    """A refinement of the rewind: this very event was already dismissed in this reaction;
    the detail says by whom, when, and which decision did it."""

    code = "event_already_dismissed"


class EventNotVisibleYet(ReactionsError):
    """The event is not yet under the horizon: a transaction that began before it is still
    open, and the move could pass over its events unseen. The detail names that transaction."""

    status, code = 409, "event_not_visible_yet"


class StreamRefused(ReactionsError):
    """An act on a stream-ordered reaction that its work table refuses: the code says why
    (the stream is not parked, the event is not its head, it is running, handled, not
    reached yet, or of a type the reaction does not handle)."""

    status, code = 409, "stream_refused"


class NotStreamOrdered(StreamRefused):
    """A parked-stream act on a reaction that keeps global order: it has no streams to park
    (its failures wedge the whole reaction; dismiss the event instead)."""

    code = "reaction_not_stream_ordered"


class StreamNotParked(StreamRefused):
    """The event's stream is not parked (or the stream has no unfinished event)."""

    code = "stream_not_parked"


class NotStreamHead(StreamRefused):
    """The event waits behind the head of its parked stream: only the head is dismissed."""

    code = "not_stream_head"


class EventInFlight(StreamRefused):
    """A worker is running ``handle`` on the event right now (a live lease)."""

    code = "event_in_flight"


class EventAlreadyHandled(StreamRefused):
    """The reaction took the event in and finished it (handled, or dismissed before)."""

    code = "event_already_handled"


class EventNotReached(StreamRefused):
    """The event lies past the reaction's intake point: it has not been taken in yet."""

    code = "event_not_reached"


class EventTypeNotHandled(StreamRefused):
    """The reaction does not handle events of this type: it never takes them in."""

    code = "event_type_not_handled"


class Unavailable(ReactionsError):
    """The operation cannot run now; retrying later may succeed."""

    status, code = 503, "unavailable"


class EventStoreNotDurable(Unavailable):
    """The in-memory event store has no bookmark table: nothing can be dismissed."""

    code = "event_store_not_durable"


class DatabaseUnavailable(Unavailable):
    """PostgreSQL could not be reached or the bookmark stayed locked too long."""

    code = "database_unavailable"


_REJECTIONS: dict[Rejection, type[ReactionsError]] = {
    Rejection.REASON_REQUIRED: ReasonRequired,
    Rejection.REASON_TOO_LONG: ReasonTooLong,
    Rejection.REWIND_REFUSED: RewindRefused,
    Rejection.EVENT_ALREADY_DISMISSED: EventAlreadyDismissed,
    Rejection.EVENT_NOT_VISIBLE_YET: EventNotVisibleYet,
}


_STREAM_REFUSALS: dict[StreamRefusal, type[ReactionsError]] = {
    StreamRefusal.REASON_REQUIRED: ReasonRequired,
    StreamRefusal.REASON_TOO_LONG: ReasonTooLong,
    StreamRefusal.STREAM_NOT_PARKED: StreamNotParked,
    StreamRefusal.NOT_STREAM_HEAD: NotStreamHead,
    StreamRefusal.EVENT_IN_FLIGHT: EventInFlight,
    StreamRefusal.EVENT_ALREADY_HANDLED: EventAlreadyHandled,
    StreamRefusal.EVENT_NOT_REACHED: EventNotReached,
    StreamRefusal.EVENT_TYPE_NOT_HANDLED: EventTypeNotHandled,
}


def from_rejection(rejected: DismissalRejected | StreamRejected) -> ReactionsError:
    """The error for a decider's rejection (its code is the rejection's value)."""
    if isinstance(rejected, StreamRejected):
        return _STREAM_REFUSALS[rejected.refusal](rejected.detail)
    return _REJECTIONS[rejected.rejection](rejected.detail)


# --- the operator console (issue 11) ---------------------------------------------------


class SubscriberNotFound(ReactionsError):
    """No subscriber (projection or reaction) by that name."""

    status, code = 404, "subscriber_not_found"


class NothingToRetry(ReactionsError):
    """Retry now on a subscriber that has no failing event waiting for a retry."""

    status, code = 409, "nothing_to_retry"


class SubscriberPaused(ReactionsError):
    """Retry now on a paused subscriber: resume it first."""

    status, code = 409, "subscriber_paused"


class AlreadyPaused(ReactionsError):
    """Pause on a subscriber that is already paused."""

    status, code = 409, "already_paused"


class NotPaused(ReactionsError):
    """Resume on a subscriber that is not paused."""

    status, code = 409, "not_paused"


class FailureGroupNotFound(ReactionsError):
    """No failing item has this fingerprint (any more)."""

    status, code = 404, "failure_group_not_found"


class FailureGroupChanged(ReactionsError):
    """The group no longer holds the items previewed: look again before acting."""

    status, code = 409, "group_changed"


class FailureGroupBusy(ReactionsError):
    """Another operator is acting on the same failure group right now."""

    status, code = 409, "group_busy"


class NotDismissable(ReactionsError):
    """A failure group holds a projection's failure: projections cannot skip an event."""

    status, code = 409, "not_dismissable"


_BY_CODE: dict[str, type[ReactionsError]] = {
    cls.code: cls
    for cls in (
        ReasonRequired, ReasonTooLong, NothingToRetry, SubscriberPaused, AlreadyPaused,
        NotPaused, FailureGroupChanged, NotDismissable,
    )
}  # fmt: skip


def for_refusal(code: str, detail: str) -> ReactionsError:
    """The error for a console decider's refusal, by its code."""
    return _BY_CODE[code](detail)


# --- projection rebuilds (issue 17) ------------------------------------------------------


class RebuildRefusedError(ReactionsError):
    """A rebuild act the engine refuses (``subscribers.rebuilds.RebuildRefused``): the code
    says why. Nothing of the act landed."""

    status, code = 409, "rebuild_refused"


class ProjectionNotRebuildable(RebuildRefusedError):
    """The projection declares no ``models``, or a foreign key from outside points into
    them: the detail says what is missing or in the way."""

    code = "projection_not_rebuildable"


class ReactionCannotBeRebuilt(RebuildRefusedError):
    """A reaction's effects already happened (mails, LLM calls): a rebuild would repeat them."""

    code = "reaction_cannot_be_rebuilt"


class RebuildInProgress(RebuildRefusedError):
    """The projection already has a rebuild that has not ended: swap it or cancel it first."""

    code = "rebuild_in_progress"


class NoRebuild(RebuildRefusedError):
    """The projection has no rebuild in progress to act on."""

    code = "no_rebuild"


class RebuildNotReady(RebuildRefusedError):
    """A swap before the rebuild is verified, or while its ``verify()`` reports problems."""

    code = "rebuild_not_ready"


class RebuildFailed(RebuildRefusedError):
    """The rebuild failed (the event and the error are on it): cancel it, or retry it."""

    code = "rebuild_failed"


class NothingToRollBack(RebuildRefusedError):
    """No swap whose previous tables are still kept."""

    code = "nothing_to_roll_back"


class TableDefinitionChanged(RebuildRefusedError):
    """A migration changed a live table during the rebuild (or since the swap): the detail
    names the difference; the rebuild must be started again."""

    code = "table_definition_changed"


class RebuildLocksBusy(Unavailable):
    """The swap (or roll back) could not take its locks within its short lock timeout, try
    after try: a long reader holds a table. Nothing changed; try again."""

    code = "rebuild_locks_busy"


_REBUILD_REFUSALS: dict[str, type[ReactionsError]] = {
    cls.code: cls
    for cls in (
        ProjectionNotRebuildable, ReactionCannotBeRebuilt, RebuildInProgress, NoRebuild,
        RebuildNotReady, RebuildFailed, NothingToRollBack, TableDefinitionChanged,
        RebuildLocksBusy, SubscriberNotFound,
    )
}  # fmt: skip


def for_rebuild_refusal(code: str, detail: str) -> ReactionsError:
    """The error for the rebuild engine's refusal ``code`` (an unknown code stays a 409)."""
    error = _REBUILD_REFUSALS.get(code)
    if error is None:
        return RebuildRefusedError(f"{code}: {detail}")
    return error(detail)
