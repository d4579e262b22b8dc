"""Progress lines: a catching-up subscriber reports now and then, a caught-up one per batch."""

from __future__ import annotations

import logging
import time

from config.options import options
from eventstore.postgres import PostgresEventStore
from eventstore.types import Cursor
from subscribers.outcome import Outcome

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
        self._last_report = time.monotonic()

    def note(self, outcome: Outcome) -> None:
        self.done += outcome.processed
        now = time.monotonic()
        if outcome.full:
            if self._backlog_started is None:
                self._backlog_started, self._backlog_done = now, 0
                self._last_report = now
            self._backlog_done += outcome.processed
            if now - self._last_report >= options().progress_interval_seconds:
                self._last_report = now
                elapsed = max(now - self._backlog_started, 1e-6)
                logger.info(
                    "%s: catching up — %d events done, %.0f events/s, ~%s behind the head",
                    self.name,
                    self._backlog_done,
                    self._backlog_done / elapsed,
                    _approximate_lag(outcome.advanced_to),
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
            logger.info(
                "%s: %d event(s) done, at %s", self.name, outcome.processed, outcome.advanced_to
            )
        elif outcome.advanced_to is not None:
            logger.debug("%s: moved past unwanted events to %s", self.name, outcome.advanced_to)


def _approximate_lag(at: Cursor | None) -> str:
    """Positions are dense but for aborted appends: the difference is a cheap estimate."""
    if at is None:
        return "?"
    head = PostgresEventStore().head()
    return str(max(0, head.position - at.position))
