"""Stream-ordered reactions, one step at a time: take in, claim, handle, settle.

The bookmark of a reaction with ``ordering = "stream"`` is its *intake point*: every
event up to it has been taken in, as a row of ``reaction_work``, or was not wanted.
A row runs only while it is the earliest unfinished row of its stream, so each
stream is handled one event at a time, in stream order ``(transaction_id,
position)``; rows of different streams run at once, up to ``concurrency`` in flight
over all workers. Each step is one short transaction; ``handle`` runs between them
with no transaction open and no connection held:

* :func:`take_in_and_claim` (bookmark row locked): intake, then claim up to
  ``concurrency`` minus the live leases, each claim under a token of its own from
  the worker's ``LeaseKeeper``, whose renewer keeps the lease while ``handle`` runs;
* :func:`run_handle` (no database): call ``handle``, keep the outcome as one value;
* :func:`settle` : delete the row under its token and append the results (exactly
  once), or record the failure: a retry with backoff, then the stream is parked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper

from config.options import options
from eventstore.horizon import exempt_from_horizon
from eventstore.postgres import PostgresEventStore, fetch_events, row_to_event
from eventstore.types import Cursor, RecordedEvent, StreamAppend
from subscribers import sql
from subscribers.failures import Failure, FailureSite, record_failure
from subscribers.leases import LeaseKeeper
from subscribers.outcome import is_connection_error
from subscribers.reactions import appends_of
from subscribers.registry import Registered
from subscribers.retry import RetryDecision

#: Events one intake statement takes in at most (it runs again while it comes back full).
INTAKE_BATCH = 500


class OrderingSwitchRefused(RuntimeError):
    """A reaction switched from stream to global ordering while work rows remain."""


@dataclass(frozen=True)
class Intake:
    """What one intake did: rows taken in, where the intake point went, whether it is
    paused because the unfinished rows of streams that are not parked reached the limit."""

    taken: int = 0
    moved_to: Cursor | None = None
    paused: bool = False
    full: bool = False


@dataclass(frozen=True)
class Claim:
    """One work row claimed for one ``handle`` call, under its own lease token."""

    row_id: int
    token: str
    attempts: int
    event: RecordedEvent


@dataclass(frozen=True)
class HandleResult:
    """The outcome of one ``handle`` call, carried as one value to :func:`settle`."""

    claim: Claim
    appends: tuple[StreamAppend, ...] = ()
    failure: Failure | None = None


@dataclass(frozen=True)
class Settled:
    """What :func:`settle` did with a result."""

    claim: Claim
    #: The row was deleted and the appends committed with it.
    handled: bool = False
    #: The claim was no longer ours (expired and taken again, or dismissed): discarded.
    lost: bool = False
    #: For a failure: the attempts made, and the delay or the parking.
    decision: RetryDecision | None = None
    failure: Failure | None = None

    @property
    def parked(self) -> bool:
        """True when this failure parked the stream."""
        return self.decision is not None and self.decision.wedged


def take_in_and_claim(
    entry: Registered, leases: LeaseKeeper, room: int, *, take_in: bool = True
) -> tuple[Intake, list[Claim]]:
    """Intake, then claim up to ``room`` runnable rows (fewer if other workers hold
    leases), in one short transaction holding the bookmark row ``FOR UPDATE``.

    Each claim's token comes from ``leases``; the caller ``hold``s it while ``handle``
    runs, so that the worker's renewer keeps its lease, and lets it go once settled.
    """
    if connection.in_atomic_block:
        raise RuntimeError("a stream-ordered reaction must not run inside a transaction")
    with transaction.atomic(), connection.cursor() as cursor:
        # It appends nothing: exempted from the horizon, its xid holds no reader back.
        exempt_from_horizon()
        cursor.execute(sql.LOCK_STREAM_BOOKMARK, {"name": entry.name})
        row = cursor.fetchone()
        if row is None or row[2] == "paused":
            return Intake(), []
        at = Cursor(int(row[0]), int(row[1]))
        intake = _intake(cursor, entry, at, paused=bool(row[3])) if take_in else Intake()
        if room <= 0:
            return intake, []
        cursor.execute(sql.COUNT_LIVE_LEASES, {"name": entry.name})
        live = int(cursor.fetchone()[0])
        room = min(room, entry.concurrency - live)
        if room <= 0:
            return intake, []
        claimed = fetch_events(
            cursor,
            sql.CLAIM_WORK,
            {
                "name": entry.name,
                "room": room,
                "tokens": [leases.new_token() for _ in range(room)],
                "lease": options().lease_seconds,
            },
        )
        claims = [Claim(int(r[0]), str(r[1]), int(r[2]), row_to_event(r[3:])) for r in claimed]
        # Claims are handed out in global order: the oldest waiting stream goes first.
        claims.sort(key=lambda claim: claim.event.cursor)
        return intake, claims


def _intake(cursor: CursorWrapper, entry: Registered, at: Cursor, *, paused: bool) -> Intake:
    """Take in the wanted events past the intake point ``at`` (bookmark row locked);
    ``paused``: the bookmark says intake was paused at the limit."""
    params: dict[str, Any] = {
        "name": entry.name,
        "tx": at.transaction_id,
        "pos": at.position,
        "batch": INTAKE_BATCH,
        "limit": entry.intake_limit,
    }
    query = sql.INTAKE
    if entry.event_types is not None:
        query, params["types"] = sql.INTAKE_OF_TYPES, list(entry.event_types)
    cursor.execute(query, params)
    open_rows, wanted, taken, last_tx, last_pos, head_tx, head_pos = cursor.fetchone()
    room = entry.intake_limit - int(open_rows)
    if room <= 0:
        cursor.execute(sql.MARK_INTAKE_PAUSED, {"name": entry.name})
        return Intake(paused=True)
    full = int(wanted) >= min(INTAKE_BATCH, room)
    last = Cursor(int(last_tx), int(last_pos)) if last_tx is not None else at
    head = Cursor(int(head_tx), int(head_pos)) if head_tx is not None else at
    # A full read stops at its last event (more may follow); a short one saw every wanted
    # event up to the head of the same snapshot, so the point moves on to that head.
    to = last if full else max(last, head, at)
    if to <= at:
        if paused:
            cursor.execute(sql.CLEAR_INTAKE_PAUSED, {"name": entry.name})
        return Intake(taken=int(taken), full=full)
    cursor.execute(sql.MOVE_INTAKE_POINT, {"name": entry.name, "to_tx": to[0], "to_pos": to[1]})
    return Intake(taken=int(taken), moved_to=to, full=full)


def run_handle(entry: Registered, claim: Claim) -> HandleResult:
    """Call ``handle`` for a claim (no transaction, no connection of ours held)."""
    try:
        return HandleResult(claim, tuple(appends_of(entry, claim.event)))
    except Exception as exc:
        return HandleResult(claim, failure=Failure.of(claim.event, exc))


def settle(entry: Registered, result: HandleResult) -> Settled:
    """Land a handle's result: compare-and-set on the claim's token plus the appends in
    one short transaction (exactly once), or record its failure."""
    if result.failure is not None:
        return _record_failure(result.claim, result.failure)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            if not result.appends:  # then it appends nothing: it holds no reader back
                exempt_from_horizon()
            cursor.execute(
                sql.SETTLE_WORK, {"id": result.claim.row_id, "token": result.claim.token}
            )
            if cursor.fetchone() is None:
                return Settled(result.claim, lost=True)
            if result.appends:
                PostgresEventStore().append_streams(list(result.appends))
            return Settled(result.claim, handled=True)
    except Exception as exc:
        if is_connection_error(exc):
            raise
        # The returned appends were refused (a concurrency conflict, a bad event): the
        # transaction rolled back, nothing was written; the attempt failed.
        return _record_failure(result.claim, Failure.of(result.claim.event, exc))


def _record_failure(claim: Claim, failure: Failure) -> Settled:
    site = FailureSite.work_row(claim.row_id, claim.token, claim.event.event_id, claim.attempts)
    with transaction.atomic(), connection.cursor() as cursor:
        exempt_from_horizon()  # a failure recorded: no append
        decision = record_failure(cursor, site, failure)
    if decision is None:
        return Settled(claim, lost=True, failure=failure)
    return Settled(claim, decision=decision, failure=failure)


def release_leases(tokens: list[str]) -> None:
    """Give back claims that will not be settled, so another worker need not wait."""
    if tokens:
        with connection.cursor() as cursor:
            cursor.execute(sql.RELEASE_WORK_LEASES, {"tokens": tokens})


def check_orderings(entries: list[Registered]) -> None:
    """Refuse a global-order reaction with stream work left; adopt a switch to stream.

    Switching global → stream keeps the cursor as the intake point. Switching back
    while rows remain would pass over them, so the worker refuses to start.
    """
    with connection.cursor() as cursor:
        for entry in entries:
            if entry.kind != "reaction":
                continue
            if entry.stream_ordered:
                cursor.execute(sql.ADOPT_STREAM_ORDERING, {"name": entry.name})
                continue
            cursor.execute(sql.HAS_WORK, {"name": entry.name})
            if cursor.fetchone()[0]:
                raise OrderingSwitchRefused(
                    f"{entry.name} is configured with ordering = 'global', but events it took"
                    " in with ordering = 'stream' are not finished (rows in reaction_work,"
                    " maybe parked streams). Switch it back to ordering = 'stream' until they"
                    " are handled or dismissed."
                )
