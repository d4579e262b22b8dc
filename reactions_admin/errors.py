"""The one error hierarchy of the operator slice.

Every refusal is a ``ReactionsError`` carrying an HTTP status and a stable ``code``,
declared in its class line (``class NotPaused(Conflict, code="not_paused")``); a class
with no code of its own is a family that its subclasses refine. Each door maps the base
class once: the REST API to a JSON ``{"code", "detail"}`` response, the admin to a
message, the MCP tool to a tool error, the CLI to a non-zero exit. A decider's refusal
(a value with a ``code`` and a ``detail``) becomes its error by :func:`from_rejection`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol


class ReactionsError(Exception):
    """Base of every refusal; ``status`` is the HTTP status, ``code`` the stable identifier."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    #: Every refusal by its code.
    by_code: ClassVar[dict[str, type[ReactionsError]]] = {}

    def __init_subclass__(cls, *, status: int = 0, code: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if status:
            cls.status = status
        if code:
            cls.code = code
            ReactionsError.by_code[code] = cls

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def as_payload(self) -> dict[str, Any]:
        """The JSON body every door shows: ``{"code", "detail"}``."""
        return {"code": self.code, "detail": self.detail}


class Rejection(Protocol):
    """A decider's refusal: a stable code (one of the classes below) and words for people."""

    @property
    def code(self) -> str: ...

    @property
    def detail(self) -> str: ...


def from_rejection(rejected: Rejection) -> ReactionsError:
    """The error for a decider's refusal, found by its code."""
    return ReactionsError.by_code[rejected.code](rejected.detail)


# -- 400: the request itself ------------------------------------------------------------


class InvalidRequest(ReactionsError, status=400, code="invalid_request"):
    """The request is malformed."""


class InvalidEventId(InvalidRequest, code="invalid_event_id"):
    """The event id is not a UUID."""


class UnstorableText(InvalidRequest, code="unstorable_text"):
    """Text PostgreSQL cannot store: a NUL character or a lone UTF-16 surrogate."""


class ReasonRequired(InvalidRequest, code="reason_required"):
    """The reason has no visible character (empty, whitespace, zero-width characters...)."""


class ReasonTooLong(InvalidRequest, code="reason_too_long"):
    """The reason is longer than the cap."""


class RequestTooLarge(ReactionsError, status=413, code="request_too_large"):
    """The request body is over Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE``."""


# -- 401, 403: who asks -----------------------------------------------------------------


class NotAuthenticated(ReactionsError, status=401, code="not_authenticated"):
    """No credentials, or credentials that do not identify an active user."""


class PermissionDenied(ReactionsError, status=403, code="permission_denied"):
    """The user lacks the permission this operation requires."""


class CsrfFailed(ReactionsError, status=403, code="csrf_failed"):
    """A session-authenticated write without a valid CSRF token."""


# -- 404: what the request names does not exist -----------------------------------------


class ReactionNotFound(ReactionsError, status=404, code="reaction_not_found"):
    """No reaction by that name (a projection's name counts as unknown)."""


class SubscriberNotFound(ReactionsError, status=404, code="subscriber_not_found"):
    """No subscriber (projection or reaction) by that name."""


class EventNotFound(ReactionsError, status=404, code="event_not_found"):
    """No event with that id."""


class FailureGroupNotFound(ReactionsError, status=404, code="failure_group_not_found"):
    """No failing item has this fingerprint (any more)."""


# -- 409: the state refuses the act ------------------------------------------------------


class RewindRefused(ReactionsError, status=409, code="rewind_refused"):
    """The event is not strictly after the bookmark: dismissals never move a bookmark back."""


class EventAlreadyDismissed(RewindRefused, code="event_already_dismissed"):
    """A refinement of the rewind: this very event was already dismissed in this reaction;
    the detail says by whom, when, and which decision did it."""


class EventNotVisibleYet(ReactionsError, status=409, code="event_not_visible_yet"):
    """The event is not yet under the horizon: a transaction that began before it is still
    open, and the move could pass over its events unseen. The detail names that transaction."""


class StreamRefused(ReactionsError, status=409, code="stream_refused"):
    """An act on a stream-ordered reaction that its work table refuses: the code says why
    (the stream is not parked, the event is not its head, it is running, handled, not
    reached yet, or of a type the reaction does not handle)."""


class NotStreamOrdered(StreamRefused, code="reaction_not_stream_ordered"):
    """A parked-stream act on a reaction that keeps global order: it has no streams to park
    (its failures wedge the whole reaction; dismiss the event instead)."""


class StreamNotParked(StreamRefused, code="stream_not_parked"):
    """The event's stream is not parked (or the stream has no unfinished event)."""


class NotStreamHead(StreamRefused, code="not_stream_head"):
    """The event waits behind the head of its parked stream: only the head is dismissed."""


class EventInFlight(StreamRefused, code="event_in_flight"):
    """A worker is running ``handle`` on the event right now (a live lease)."""


class EventAlreadyHandled(StreamRefused, code="event_already_handled"):
    """The reaction took the event in and finished it (handled, or dismissed before)."""


class EventNotReached(StreamRefused, code="event_not_reached"):
    """The event lies past the reaction's intake point: it has not been taken in yet."""


class EventTypeNotHandled(StreamRefused, code="event_type_not_handled"):
    """The reaction does not handle events of this type: it never takes them in."""


class NothingToRetry(ReactionsError, status=409, code="nothing_to_retry"):
    """Retry now on a subscriber that has no failing event waiting for a retry."""


class SubscriberPaused(ReactionsError, status=409, code="subscriber_paused"):
    """Retry now on a paused subscriber: resume it first."""


class AlreadyPaused(ReactionsError, status=409, code="already_paused"):
    """Pause on a subscriber that is already paused."""


class NotPaused(ReactionsError, status=409, code="not_paused"):
    """Resume on a subscriber that is not paused."""


class FailureGroupChanged(ReactionsError, status=409, code="group_changed"):
    """The group no longer holds the items previewed: look again before acting."""


class FailureGroupBusy(ReactionsError, status=409, code="group_busy"):
    """Another operator is acting on the same failure group right now."""


class NotDismissable(ReactionsError, status=409, code="not_dismissable"):
    """A failure group holds a projection's failure: projections cannot skip an event."""


class RevocationNotAudited(ReactionsError, status=409, code="revocation_not_audited"):
    """A token is revoked only by ``reactions_admin.acts.tokens`` (audited): setting
    ``revoked_at`` any other way, or deleting a live token, is refused by the database."""


class RevocationFinal(ReactionsError, status=409, code="revocation_final"):
    """A revoked API token cannot be brought back: its ``revoked_at`` never changes again."""


# -- 503: not now; retrying later may succeed --------------------------------------------


class Unavailable(ReactionsError, status=503, code="unavailable"):
    """The operation cannot run now; retrying later may succeed."""


class EventStoreNotDurable(Unavailable, code="event_store_not_durable"):
    """The in-memory event store has no bookmark table: nothing can be dismissed."""


class DatabaseUnavailable(Unavailable, code="database_unavailable"):
    """PostgreSQL could not be reached or the bookmark stayed locked too long."""


# -- projection rebuilds (issue 17) ------------------------------------------------------


class RebuildRefusedError(ReactionsError, status=409):
    """A rebuild act the engine refuses (``subscribers.rebuilds.RebuildRefused``): the code
    says why. Nothing of the act landed."""


class ProjectionNotRebuildable(RebuildRefusedError, code="projection_not_rebuildable"):
    """The projection declares no ``models``, or a foreign key from outside points into
    them: the detail says what is missing or in the way."""


class ReactionCannotBeRebuilt(RebuildRefusedError, code="reaction_cannot_be_rebuilt"):
    """A reaction's effects already happened (mails, LLM calls): a rebuild would repeat them."""


class RebuildInProgress(RebuildRefusedError, code="rebuild_in_progress"):
    """The projection already has a rebuild that has not ended: swap it or cancel it first."""


class NoRebuild(RebuildRefusedError, code="no_rebuild"):
    """The projection has no rebuild in progress to act on."""


class RebuildNotReady(RebuildRefusedError, code="rebuild_not_ready"):
    """A swap before the rebuild is verified, or while its ``verify()`` reports problems."""


class RebuildFailed(RebuildRefusedError, code="rebuild_failed"):
    """The rebuild failed (the event and the error are on it): cancel it, or retry it."""


class NothingToRollBack(RebuildRefusedError, code="nothing_to_roll_back"):
    """No swap whose previous tables are still kept."""


class TableDefinitionChanged(RebuildRefusedError, code="table_definition_changed"):
    """A migration changed a live table during the rebuild (or since the swap): the detail
    names the difference; the rebuild must be started again."""


class RebuildLocksBusy(Unavailable, code="rebuild_locks_busy"):
    """The swap (or roll back) could not take its locks within its short lock timeout, try
    after try: a long reader holds a table. Nothing changed; try again."""


def for_rebuild_refusal(code: str, detail: str) -> ReactionsError:
    """The error for the rebuild engine's refusal ``code`` (an unknown one stays a 409)."""
    error = ReactionsError.by_code.get(code)
    if error is None:
        return RebuildRefusedError(f"{code}: {detail}")
    return error(detail)
