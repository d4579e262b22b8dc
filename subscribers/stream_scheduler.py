"""The in-process side of a stream-ordered reaction: a bounded pool of ``handle`` threads.

The loop thread does all the database work (intake, claim, renew, settle) on its one
connection; ``handle`` runs in a pool of ``concurrency`` threads that never touch the
worker's connection (a connection a ``handle`` opens itself is closed when it
returns). So a worker's connections do not grow with ``concurrency``.

A ``handle`` that runs past ``handle_timeout_seconds`` is a failed attempt: its row is
released for a retry and its thread is abandoned (its result is discarded when it
returns). Until it returns it keeps its pool slot; but it no longer holds a lease, so
across the workers an abandoned ``handle`` may still be running beyond ``concurrency``.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, connections
from django.utils import timezone

from config.options import options
from subscribers import sql
from subscribers.bookmarks import Failure
from subscribers.outcome import Outcome, log_failure
from subscribers.registry import Registered
from subscribers.streams import (
    Claim,
    HandleResult,
    LeaseTokens,
    Settled,
    release_leases,
    renew_leases,
    run_handle,
    settle,
    take_in_and_claim,
)

logger = logging.getLogger("eventdesk.streams")


@dataclass
class _Running:
    claim: Claim
    future: Future[HandleResult]
    started: float


class StreamScheduler:
    """Runs one stream-ordered reaction: each :meth:`step` settles what finished,
    renews the leases held, takes new events in and starts what may run."""

    def __init__(self, entry: Registered, tokens: LeaseTokens, wake: threading.Event) -> None:
        self.entry = entry
        self.tokens = tokens
        self.wake = wake
        self._pool = ThreadPoolExecutor(
            max_workers=entry.concurrency, thread_name_prefix=f"eventdesk-{entry.name}"
        )
        self._running: dict[str, _Running] = {}
        #: Every future not finished, abandoned ones included: each holds a pool thread.
        self._busy: set[Future[HandleResult]] = set()
        self._renewed = time.monotonic()

    @property
    def in_flight(self) -> int:
        """Claims handed to ``handle`` and not settled yet."""
        return len(self._running)

    def step(self, *, stopping: bool = False) -> Outcome:
        """One pass; ``stopping`` settles and renews but claims nothing new."""
        settled = self._settle_finished()
        renewed = self._renew_if_due()
        handled = sum(1 for s in settled if s.handled)
        failed = [s for s in settled if s.decision is not None]
        lost = sum(1 for s in settled if s.lost)
        if stopping:
            return Outcome(
                self.entry.name,
                processed=handled,
                settled=len(settled),
                lost=lost,
                renewed=renewed,
            )
        self._busy = {future for future in self._busy if not future.done()}
        room = self.entry.concurrency - len(self._busy)
        intake, claims = take_in_and_claim(self.entry, self.tokens, room)
        for claim in claims:
            self._start(claim)
        return Outcome(
            self.entry.name,
            claimed=bool(claims) or intake.moved_to is not None,
            processed=handled,
            advanced_to=intake.moved_to,
            decision=failed[-1].decision if failed else None,
            full=intake.full,
            started=len(claims),
            settled=len(settled),
            in_flight=self.in_flight,
            lost=lost,
            renewed=renewed,
        )

    def next_wake(self, poll: float) -> float:
        """Seconds until this reaction needs a pass without a wake-up: a retry falling
        due, a lease to renew, a ``handle`` reaching its timeout, or the poll."""
        due = [poll]
        with connection.cursor() as cursor:
            cursor.execute(sql.NEXT_WORK_RETRY, {"name": self.entry.name})
            row = cursor.fetchone()
        retry: datetime | None = row[0] if row else None
        if retry is not None:
            due.append((retry - timezone.now()).total_seconds() + 0.01)
        if self._running:
            now = time.monotonic()
            due.append(self._renewed + _renew_every() - now)
            timeout = _handle_timeout()
            if timeout is not None:
                first = min(running.started for running in self._running.values())
                due.append(first + timeout - now + 0.01)
        return max(0.01, min(due))

    def close(self, timeout: float) -> int:
        """Stop: let the running ``handle`` calls finish (up to ``timeout``) and settle
        them, then give back the claims still running; return how many were handled."""
        deadline = time.monotonic() + timeout
        handled = 0
        try:
            while self._running and time.monotonic() < deadline:
                self.wake.clear()
                handled += self.step(stopping=True).processed
                if self._running:
                    self.wake.wait(min(_renew_every(), max(0.0, deadline - time.monotonic())))
            handled += self.step(stopping=True).processed
        finally:
            self._give_back(timeout)
        return handled

    def _give_back(self, timeout: float) -> None:
        if self._running:
            logger.warning(
                "%s: %d handle call(s) did not finish within %.0fs; their claims are given back",
                self.entry.name,
                len(self._running),
                timeout,
            )
            tokens = list(self._running)
            self._running.clear()
            release_leases(tokens)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _start(self, claim: Claim) -> None:
        future = self._pool.submit(self._run, claim)
        self._running[claim.token] = _Running(claim, future, time.monotonic())
        self._busy.add(future)
        future.add_done_callback(lambda _: self.wake.set())

    def _run(self, claim: Claim) -> HandleResult:
        try:
            return run_handle(self.entry, claim)
        finally:
            # A connection the handle opened itself goes back now, not when the thread ends.
            connections.close_all()

    def _settle_finished(self) -> list[Settled]:
        settled: list[Settled] = []
        timeout = _handle_timeout()
        now = time.monotonic()
        for token, running in list(self._running.items()):
            if running.future.done():
                result = running.future.result()
            elif timeout is not None and now - running.started > timeout:
                result = HandleResult(running.claim, failure=_timed_out(running, timeout))
                logger.error(
                    "%s: handle ran past %gs on event %s; abandoning it",
                    self.entry.name,
                    timeout,
                    running.claim.event.event_id,
                )
            else:
                continue
            del self._running[token]
            outcome = settle(self.entry, result)
            self._log(outcome)
            settled.append(outcome)
        return settled

    def _renew_if_due(self) -> int:
        if time.monotonic() - self._renewed < _renew_every():
            return 0
        renew_leases(list(self._running))
        self._renewed = time.monotonic()
        return len(self._running)

    def _log(self, settled: Settled) -> None:
        event = settled.claim.event
        if settled.lost:
            logger.warning(
                "%s: the claim on event %s was lost (its lease expired and another worker"
                " took it, or an operator acted): the result is discarded",
                self.entry.name,
                event.event_id,
            )
        elif settled.failure is not None:
            log_failure(logger, self.entry.name, settled.failure, settled.decision)
            if settled.parked:
                logger.error(
                    "%s: stream %r is parked at event %s; the other streams go on",
                    self.entry.name,
                    event.stream_id,
                    event.event_id,
                )


def _timed_out(running: _Running, timeout: float) -> Failure:
    return Failure(
        running.claim.event,
        f"HandleTimeout: handle ran past handle_timeout_seconds ({timeout:g}s) on this"
        " event; it was abandoned and its result will be discarded",
        "",
    )


def _renew_every() -> float:
    """Renew well before a lease can expire: three chances per lease."""
    return options().lease_seconds / 3


def _handle_timeout() -> float | None:
    # handle_timeout_seconds comes with the lease-token work (issue 9, item 6).
    value = getattr(options(), "handle_timeout_seconds", None)
    return float(value) if value else None
