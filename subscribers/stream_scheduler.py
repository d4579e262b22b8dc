"""The in-process side of a stream-ordered reaction: a bounded pool of ``handle`` threads.

The loop thread does the reaction's database work (intake, claim, settle) on its one
connection; ``handle`` runs in a pool of ``concurrency`` threads that never touch the
loop's connection (a connection a ``handle`` opens itself, with the ORM, is given
back when it returns, to the worker's connection pool when there is one). The
worker's one lease renewer (``subscribers.leases``) keeps every claim's lease while
its ``handle`` runs, however busy or blocked the loop thread is.

A ``handle`` that runs past its ``handle_timeout_seconds`` (the reaction's own, or
the option) is a failed attempt: its row is released for a retry and its thread is
abandoned (its result is discarded when it returns). Until it returns it keeps its
pool slot; but it no longer holds a lease, so across the workers an abandoned
``handle`` may still be running beyond ``concurrency``.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, connections
from django.utils import timezone

from subscribers import sql
from subscribers.heartbeat import Doing
from subscribers.leases import LeaseKeeper
from subscribers.outcome import Outcome, log_failure
from subscribers.reactions import HandleTimeout
from subscribers.registry import Registered
from subscribers.streams import (
    Claim,
    HandleResult,
    Settled,
    release_leases,
    run_handle,
    settle,
    take_in_and_claim,
)

logger = logging.getLogger("eventdesk.streams")


@dataclass
class _Running:
    claim: Claim
    started: float
    future: Future[HandleResult] = field(init=False)
    #: The pool thread running ``handle`` (where it is stuck, if it times out).
    thread: int | None = None


class StreamScheduler:
    """Runs one stream-ordered reaction: each :meth:`step` settles what finished, takes
    new events in and starts what may run, under tokens of the worker's ``leases``."""

    def __init__(self, entry: Registered, leases: LeaseKeeper, wake: threading.Event) -> None:
        self.entry = entry
        self.leases = leases
        self.wake = wake
        self._pool = ThreadPoolExecutor(
            max_workers=entry.concurrency, thread_name_prefix=f"eventdesk-{entry.name}"
        )
        self._running: dict[str, _Running] = {}
        #: Every future not finished, abandoned ones included: each holds a pool thread.
        self._busy: set[Future[HandleResult]] = set()

    @property
    def in_flight(self) -> int:
        """Claims handed to ``handle`` and not settled yet."""
        return len(self._running)

    def step(self, *, stopping: bool = False) -> Outcome:
        """One pass; ``stopping`` settles but claims nothing new."""
        settled = self._settle_finished()
        handled = sum(1 for s in settled if s.handled)
        failed = [s for s in settled if s.decision is not None]
        lost = sum(1 for s in settled if s.lost)
        if stopping:
            return Outcome(
                self.entry.name,
                processed=handled,
                settled=len(settled),
                lost=lost,
            )
        self._busy = {future for future in self._busy if not future.done()}
        room = self.entry.concurrency - len(self._busy)
        intake, claims = take_in_and_claim(self.entry, self.leases, room)
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
        )

    def doing(self) -> list[Doing]:
        """The ``handle`` calls running now, as the worker's heartbeat shows them."""
        now, wall = time.monotonic(), timezone.now()
        return [
            Doing(
                self.entry.name,
                running.claim.event.event_id,
                wall - timedelta(seconds=now - running.started),
                running.claim.attempts + 1,
            )
            for running in list(self._running.values())
        ]

    def next_wake(self, poll: float) -> float:
        """Seconds until this reaction needs a pass without a wake-up: a retry falling
        due, a ``handle`` reaching its timeout, or the poll."""
        due = [poll]
        with connection.cursor() as cursor:
            cursor.execute(sql.NEXT_WORK_RETRY, {"name": self.entry.name})
            row = cursor.fetchone()
        retry: datetime | None = row[0] if row else None
        if retry is not None:
            due.append((retry - timezone.now()).total_seconds() + 0.01)
        if self._running:
            due.append(self._until_a_timeout())
        return max(0.01, min(due))

    def _until_a_timeout(self) -> float:
        """Seconds until the earliest running ``handle`` reaches its timeout."""
        first = min(running.started for running in self._running.values())
        return first + self.entry.handle_timeout - time.monotonic() + 0.01

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
                    left = deadline - time.monotonic()
                    self.wake.wait(max(0.0, min(self._until_a_timeout(), left)))
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
            try:
                release_leases(tokens)
            finally:
                for token in tokens:
                    self.leases.let_go(token)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _start(self, claim: Claim) -> None:
        self.leases.hold(claim.token)  # the worker's renewer keeps the lease from now on
        running = _Running(claim, time.monotonic())
        running.future = self._pool.submit(self._run, running)
        self._running[claim.token] = running
        self._busy.add(running.future)
        running.future.add_done_callback(lambda _: self.wake.set())

    def _run(self, running: _Running) -> HandleResult:
        running.thread = threading.get_ident()
        try:
            return run_handle(self.entry, running.claim)
        finally:
            # A connection the handle opened itself goes back now, not when the thread ends.
            connections.close_all()

    def _settle_finished(self) -> list[Settled]:
        settled: list[Settled] = []
        timeout = self.entry.handle_timeout
        now = time.monotonic()
        for token, running in list(self._running.items()):
            if running.future.done():
                result = running.future.result()
            elif now - running.started > timeout:
                failure = HandleTimeout(timeout, running.thread).failure(running.claim.event)
                result = HandleResult(running.claim, failure=failure)
                logger.error(
                    "%s: handle ran past %gs on event %s; abandoning it",
                    self.entry.name,
                    timeout,
                    running.claim.event.event_id,
                )
            else:
                continue
            del self._running[token]
            try:
                outcome = settle(self.entry, result)
            finally:
                self.leases.let_go(token)
            self._log(outcome)
            settled.append(outcome)
        return settled

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
            log_failure(
                logger, self.entry.name, settled.failure, settled.decision, halted="stream parked"
            )
            if settled.parked:
                logger.error(
                    "%s: stream %r is parked at event %s; the other streams go on",
                    self.entry.name,
                    event.stream_id,
                    event.event_id,
                )
