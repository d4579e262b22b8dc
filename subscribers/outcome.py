"""What one batch of a subscriber did, for the loop and its logs."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import DatabaseError, InterfaceError, OperationalError, connection

from eventstore.types import Cursor
from subscribers.bookmarks import Failure
from subscribers.retry import RetryDecision


@dataclass(frozen=True)
class Outcome:
    """One batch: how many events were done, where the bookmark went, what failed."""

    name: str
    claimed: bool = False
    processed: int = 0
    advanced_to: Cursor | None = None
    failure: Failure | None = None
    decision: RetryDecision | None = None
    full: bool = False
    discarded: bool = False

    @property
    def progressed(self) -> bool:
        """True when the bookmark moved or a failure was recorded: worth another pass."""
        return self.advanced_to is not None or self.decision is not None


def is_connection_error(exc: BaseException) -> bool:
    """A lost database connection (retried by the loop), as opposed to a subscriber's error."""
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, DatabaseError):
        return False
    raw = connection.connection
    broken = raw is None or bool(getattr(raw, "broken", False) or getattr(raw, "closed", False))
    return isinstance(exc, OperationalError) and broken


def log_failure(
    logger: logging.Logger, name: str, failure: Failure, decision: RetryDecision | None
) -> None:
    """One line per failure: WARNING while retrying, ERROR when the bookmark wedges."""
    wedged = decision is not None and decision.wedged
    logger.log(
        logging.ERROR if wedged else logging.WARNING,
        "%s failed on event %s (%s), attempt %s: %s%s",
        name,
        failure.event.event_id,
        failure.event.event_type,
        decision.attempts if decision else "?",
        failure.error,
        " (wedged until an operator acts)" if wedged else "; will retry",
    )
