"""One reaction step: claim a lease, handle with no transaction open, settle the result.

``handle`` runs in a thread of its own, waited for up to ``handle_timeout_seconds``,
while the worker's renewer keeps the claim's lease; ``subscribers.settlement`` then
decides what becomes of the result.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

from django.db import DatabaseError, connection, connections, transaction

from config.options import options
from eventstore.horizon import exempt_from_horizon
from eventstore.types import RecordedEvent, StreamAppend
from subscribers import sql
from subscribers.bookmarks import Batch, BookmarkState, read_batch
from subscribers.failures import Failure
from subscribers.leases import LeaseKeeper
from subscribers.outcome import Outcome
from subscribers.registry import Registered
from subscribers.settlement import Claim, ReactionStep, settle

logger = logging.getLogger("eventdesk.reactions")


class NotAReactionResult(TypeError):
    """``handle`` returned something other than a sequence of ``StreamAppend`` (or None)."""


class HandleTimeout(Exception):
    """``handle`` ran past ``handle_timeout_seconds``; its thread was abandoned."""

    def __init__(self, timeout: float, thread_ident: int | None) -> None:
        super().__init__(f"handle ran past {timeout:g}s")
        #: Where the abandoned thread was when it was given up on (for the operator).
        self.where = _where(thread_ident)

    def failure(self, event: RecordedEvent) -> Failure:
        """The failed attempt on ``event``, with where its thread was stuck as the trace."""
        return Failure(event, f"HandleTimeout: {self}", self.where)


def run_reaction_step(
    entry: Registered, leases: LeaseKeeper, *, should_stop: Callable[[], bool] = lambda: False
) -> Outcome:
    """Handle the next batch of ``entry`` (usually one event) if its lease can be had.

    External effects of ``handle`` are at-least-once; the appends it returns are
    written exactly once, together with the bookmark move, and only if the
    bookmark still carries this claim's token where the claim found it.
    """
    if connection.in_atomic_block:
        raise RuntimeError("a reaction must not run inside a transaction")
    token = leases.new_token()
    claimed = claim_lease(entry, token)
    if claimed is None:
        return Outcome(entry.name)
    claim, batch = claimed
    leases.hold(token)
    try:
        if batch.events:
            # Release the connection: nothing of ours stays open while the slow work
            # runs, so this reaction holds back neither the horizon nor a pool slot.
            connection.close()
        step = _work(entry, claim, batch, leases, should_stop)
        return settle(entry, step)
    except BaseException:
        _release_quietly(entry.name, token)  # or the lease stands until it expires
        raise
    finally:
        leases.let_go(token)


def _release_quietly(name: str, token: str) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql.RELEASE_LEASE, {"name": name, "token": token})
    except DatabaseError:  # the database is away: the lease will expire instead
        pass


def claim_lease(entry: Registered, token: str) -> tuple[Claim, Batch] | None:
    """Claim the lease of ``entry`` under ``token`` and read its next batch, in one short
    transaction; None when another claim's lease is live (or a retry is not due).

    The transaction appends nothing, so it is exempted from the horizon: its xid (the
    lease is a write) hides no event, and no reader waits for it. A reaction claims right
    after each handled event; events committed meanwhile used to wait for the claim's
    commit before any projection saw them (a projection's p99 beside a sleeping reaction,
    benchmarks/README.md)."""
    with transaction.atomic(), connection.cursor() as cursor:
        exempt_from_horizon()
        cursor.execute(
            sql.CLAIM_LEASE,
            {"name": entry.name, "token": token, "lease": options().lease_seconds},
        )
        row = cursor.fetchone()
        if row is None:
            return None
        state = BookmarkState.from_row(row)
        return Claim(entry.name, token, state), read_batch(cursor, entry, state.cursor)


def _work(
    entry: Registered,
    claim: Claim,
    batch: Batch,
    leases: LeaseKeeper,
    should_stop: Callable[[], bool],
) -> ReactionStep:
    """Run ``handle`` on the batch's events, in order, until one fails."""
    timeout = entry.handle_timeout
    appends: list[StreamAppend] = []
    done, failure = 0, None
    for event in batch.events:
        # A lost lease refuses the result anyway: no point in handling more of the batch.
        if done and (should_stop() or leases.is_lost(claim.token)):
            break
        try:
            appends.extend(handle_in_thread(entry, event, timeout))
        except HandleTimeout as exc:
            failure = exc.failure(event)
            break
        except Exception as exc:
            failure = Failure.of(event, exc)
            break
        done += 1
    if failure is None and done == len(batch.events):
        to = batch.end(claim.state.cursor, entry.batch_size)
    else:
        to = batch.events[done - 1].cursor if done else claim.state.cursor
    return ReactionStep(
        claim=claim,
        events=tuple(batch.events),
        done=done,
        to=to,
        appends=tuple(appends),
        failure=failure,
        full=failure is None and len(batch.events) >= entry.batch_size,
    )


def handle_in_thread(entry: Registered, event: RecordedEvent, timeout: float) -> list[StreamAppend]:
    """``handle(event)`` in a thread of its own, waited for up to ``timeout`` seconds.

    Past the timeout the thread is abandoned (a Python thread cannot be stopped): it
    may go on running, but what it returns is never read, and nothing it could
    return is written, since only the caller settles a claim.
    """
    finished = threading.Event()
    abandoned = threading.Event()
    box: dict[str, Any] = {}

    def body() -> None:
        try:
            box["result"] = appends_of(entry, event)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc
        finally:
            connections.close_all()  # the connections this thread opened, if any
            finished.set()
            if abandoned.is_set():
                logger.warning(
                    "%s: handle of event %s returned after its timeout; its result is discarded",
                    entry.name,
                    event.event_id,
                )

    thread = threading.Thread(target=body, name=f"eventdesk-handle-{entry.name}", daemon=True)
    thread.start()
    if not finished.wait(timeout):
        abandoned.set()
        raise HandleTimeout(timeout, thread.ident)
    if "error" in box:
        raise box["error"]
    result: list[StreamAppend] = box["result"]
    return result


def _where(thread_ident: int | None) -> str:
    """Where an abandoned ``handle`` thread is stuck, for the operator's traceback."""
    frame = sys._current_frames().get(thread_ident or -1)
    if frame is None:
        return "handle was abandoned (its thread had just finished)\n"
    stack = "".join(traceback.format_stack(frame))
    return f"handle was abandoned here, still running:\n{stack}"


def appends_of(entry: Registered, event: RecordedEvent) -> list[StreamAppend]:
    """Call the reaction's ``handle(event)`` and check what it returned: the appends to
    write (a single ``StreamAppend`` or None are accepted too), or ``NotAReactionResult``."""
    result: Any = entry.subscriber.handle(event)
    if result is None:
        return []
    if isinstance(result, StreamAppend):
        result = [result]
    appends = list(result)
    wrong = [a for a in appends if not isinstance(a, StreamAppend)]
    if wrong:
        raise NotAReactionResult(
            f"{entry.name}.handle returned {type(wrong[0]).__name__}; "
            "expected a list of StreamAppend (or None)"
        )
    return appends
