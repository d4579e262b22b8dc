"""Progress lines: a catching-up subscriber reports now and then, a caught-up one per batch."""

from __future__ import annotations

import logging
import time

from config.options import options
from eventstore.postgres import PostgresEventStore
from eventstore.types import Cursor
from subscribers.outcome import Outcome
from subscribers.pace import duration, eta_seconds

logger = logging.getLogger("eventdesk.progress")


class Progress:
    """Counts one subscriber's events and says how it is doing.

    While batches come back full (a backlog), one INFO line every
    ``progress_interval_seconds``: events done, events per second, lag. Once
    caught up, one INFO line per batch that did something.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.done = 0
        self._backlog_started: float | None = None
        self._backlog_done = 0
        #: The position the backlog started from: the ETA is read in positions.
        self._backlog_from: int | None = None
        self._last_report = time.monotonic()

    def note(self, outcome: Outcome) -> None:
        self.done += outcome.processed
        now = time.monotonic()
        if outcome.full:
            if self._backlog_started is None:
                self._backlog_started, self._backlog_done = now, 0
                self._last_report = now
                self._backlog_from = outcome.advanced_to.position if outcome.advanced_to else None
            self._backlog_done += outcome.processed
            if now - self._last_report >= options().progress_interval_seconds:
                self._last_report = now
                elapsed = max(now - self._backlog_started, 1e-6)
                behind = _approximate_lag(outcome.advanced_to)
                logger.info(
                    "%s: catching up — %d events done, %.0f events/s, ~%s behind the head, %s",
                    self.name,
                    self._backlog_done,
                    self._backlog_done / elapsed,
                    "?" if behind is None else behind,
                    self._eta(outcome.advanced_to, behind, elapsed),
                )
            return
        if self._backlog_started is not None and outcome.claimed:
            logger.info(
                "%s: caught up — %d events in %.1fs",
                self.name,
                self._backlog_done + outcome.processed,
                now - self._backlog_started,
            )
            self._backlog_started = None
        elif outcome.processed:
            # A stream-ordered reaction settles events out of global order: no position.
            at = "" if outcome.advanced_to is None else f", at {outcome.advanced_to}"
            logger.info("%s: %d event(s) done%s", self.name, outcome.processed, at)
        elif outcome.advanced_to is not None:
            logger.debug("%s: moved past unwanted events to %s", self.name, outcome.advanced_to)

    def _eta(self, at: Cursor | None, behind: int | None, elapsed: float) -> str:
        """ "ETA ~40 s": the positions left at the speed the backlog has moved through them
        (events passed over count too: they are part of the distance)."""
        if at is None or behind is None or self._backlog_from is None:
            return "ETA unknown"
        eta = eta_seconds(behind, (at.position - self._backlog_from) / elapsed)
        return "ETA unknown" if eta is None else f"ETA ~{duration(eta)}"


def _approximate_lag(at: Cursor | None) -> int | None:
    """Positions are dense but for aborted appends: the difference is a cheap estimate."""
    if at is None:
        return None
    head = PostgresEventStore().head()
    return max(0, head.position - at.position)
