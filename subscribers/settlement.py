"""Settling a reaction step: the result of ``handle`` lands, or is discarded, and why.

A step's result travels as one value, ``ReactionStep``, to ``settle``, which locks
the bookmark row and looks at it as it is now:

* the row is where the claim found it and carries the claim's token: the result
  lands (compare-and-set, appends), or the step's failure is recorded;
* the row has moved (an operator dismissed the event, or another worker finished
  it): the result is discarded, and there is nothing to record;
* the row is where it was but carries another token, or none (the lease ran out and
  was taken over): the result is discarded, and that counts as a failed attempt.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper

from eventstore.horizon import exempt_from_horizon
from eventstore.postgres import PostgresEventStore
from eventstore.types import Cursor, RecordedEvent, StreamAppend
from subscribers import sql
from subscribers.bookmarks import BookmarkState
from subscribers.failures import Failure, FailureSite, record_failure
from subscribers.outcome import Outcome, is_connection_error, log_failure
from subscribers.registry import Registered

logger = logging.getLogger("eventdesk.reactions")


class LeaseLost(Exception):
    """The bookmark stopped carrying the claim's token while ``handle`` ran (the lease ran
    out and another claim took it, or it was given back): the result was discarded."""


@dataclass(frozen=True)
class Claim:
    """A lease on a reaction's bookmark: its token, and the row as the claim found it."""

    name: str
    token: str
    state: BookmarkState


@dataclass(frozen=True)
class ReactionStep:
    """What one step did, carried whole to ``settle``: the claim it held, the events it
    took, how many it handled, where the bookmark goes if the result lands, the appends
    to write, and the failure that ended the batch (if any)."""

    claim: Claim
    events: tuple[RecordedEvent, ...]
    done: int
    to: Cursor
    appends: tuple[StreamAppend, ...]
    failure: Failure | None
    full: bool


@dataclass(frozen=True)
class BookmarkRow:
    """The reaction's bookmark as the settling transaction found it (locked)."""

    state: BookmarkState
    lease_owner: str


class Verdict(enum.Enum):
    """What became of a claim by the time its result is settled."""

    OURS = "ours"  # same cursor, same token: the result lands
    MOVED = "moved"  # the cursor moved: dismissed, or finished by another worker
    LOST = "lost"  # same cursor, another token (or none): the lease was lost


def judge(claim: Claim, row: BookmarkRow | None) -> Verdict:
    """Whether ``claim`` still stands on the bookmark ``row`` (pure)."""
    if row is None or row.state.cursor != claim.state.cursor:
        return Verdict.MOVED
    if row.lease_owner != claim.token:
        return Verdict.LOST
    return Verdict.OURS


def settle(entry: Registered, step: ReactionStep) -> Outcome:
    """The short transaction after ``handle``: land the result, or record why not."""
    try:
        return _settle(entry, step)
    except Exception as exc:
        if step.failure is not None or not step.appends or is_connection_error(exc):
            raise
        # The returned appends were refused (a concurrency conflict, a bad event):
        # nothing was written; count it as a failure on the first handled event.
        failed = Failure.of(step.events[0], exc)
        with transaction.atomic(), connection.cursor() as cursor:
            row = _lock(cursor, entry.name)
            decision = None
            if judge(step.claim, row) is Verdict.OURS and row is not None:
                at, token = step.claim.state.cursor, step.claim.token
                site = FailureSite.bookmark(entry.name, at, row.state, owner=token)
                decision = record_failure(cursor, site, failed)
        log_failure(logger, entry.name, failed, decision)
        return Outcome(entry.name, claimed=True, failure=failed, decision=decision)


def _settle(entry: Registered, step: ReactionStep) -> Outcome:
    claim = step.claim
    with transaction.atomic(), connection.cursor() as cursor:
        if not step.appends:
            # It only moves the bookmark or records a failure: exempted from the horizon,
            # it holds no reader back (see ``claim_lease``). With appends it cannot be.
            exempt_from_horizon()
        row = _lock(cursor, entry.name)
        verdict = judge(claim, row)
        if verdict is not Verdict.OURS and not step.events:
            return Outcome(entry.name, claimed=True)  # nothing was handled, nothing to say
        if verdict is Verdict.MOVED:
            logger.warning(
                "%s: the bookmark moved while %d event(s) were handled (dismissed by an"
                " operator, or finished by another worker): the result (%d append(s)) is"
                " discarded",
                entry.name,
                step.done,
                len(step.appends),
            )
            cursor.execute(sql.RELEASE_LEASE, {"name": entry.name, "token": claim.token})
            return Outcome(entry.name, claimed=True, discarded=True)
        assert row is not None  # judged OURS or LOST
        if verdict is Verdict.LOST:
            failure = _lost_lease(step, row)
            decision = record_failure(
                cursor, FailureSite.lost_lease(entry.name, row.state), failure
            )
            log_failure(logger, entry.name, failure, decision)
            return Outcome(
                entry.name, claimed=True, failure=failure, decision=decision, discarded=True
            )
        at, moved, decision = claim.state.cursor, None, None
        if step.to > claim.state.cursor:
            cursor.execute(
                sql.COMPARE_AND_SET,
                {
                    "name": entry.name,
                    "token": claim.token,
                    "tx": claim.state.cursor[0],
                    "pos": claim.state.cursor[1],
                    "to_tx": step.to[0],
                    "to_pos": step.to[1],
                },
            )
            if cursor.fetchone() is None:  # the locked row said otherwise a moment ago
                raise RuntimeError(f"{entry.name}: the compare-and-set refused a standing claim")
            if step.appends:
                PostgresEventStore().append_streams(list(step.appends))
            at, moved = step.to, step.to
        if step.failure is not None:
            # After a compare-and-set the lease is released: the failure is recorded
            # against the new cursor, which this transaction holds locked. Attempts are
            # counted from the row as it is now (a lost lease may have added one).
            site = FailureSite.bookmark(
                entry.name, at, row.state, owner="" if moved else claim.token
            )
            decision = record_failure(cursor, site, step.failure)
            log_failure(logger, entry.name, step.failure, decision)
        elif moved is None:
            cursor.execute(sql.RELEASE_LEASE, {"name": entry.name, "token": claim.token})
    return Outcome(
        entry.name,
        claimed=True,
        processed=step.done,
        advanced_to=moved,
        failure=step.failure,
        decision=decision,
        full=step.full,
    )


def _lock(cursor: CursorWrapper, name: str) -> BookmarkRow | None:
    cursor.execute(sql.LOCK_REACTION_BOOKMARK, {"name": name})
    row = cursor.fetchone()
    if row is None:
        return None
    return BookmarkRow(BookmarkState.from_row(row[:4]), row[4])


def _lost_lease(step: ReactionStep, row: BookmarkRow) -> Failure:
    """The failure a lost lease is recorded as: on the first event of the batch, since
    none of the batch's results landed."""
    holder = row.lease_owner or "nobody"
    cause = f"; handle had failed too: {step.failure.error}" if step.failure else ""
    error = LeaseLost(
        f"the lease {step.claim.token} was lost while handle ran (the bookmark is now leased"
        f" to {holder}): the result of {step.done} event(s), {len(step.appends)} append(s),"
        f" is discarded{cause}"
    )
    return Failure(step.events[0], f"LeaseLost: {error}", "")
