"""What one batch of a subscriber did, for the loop and its logs."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import DatabaseError, InterfaceError, OperationalError, connection

from eventstore.types import Cursor
from subscribers.failures import Failure
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
    #: Stream ordering: handle calls started, results settled, and calls still running.
    started: int = 0
    settled: int = 0
    in_flight: int = 0
    #: Stream ordering: results discarded (claims lost), and leases renewed, in this step.
    lost: int = 0
    renewed: int = 0

    @property
    def progressed(self) -> bool:
        """True when the bookmark moved, a failure was recorded, or (stream ordering) a
        handle call started or was settled: worth another pass."""
        return (
            self.advanced_to is not None
            or self.decision is not None
            or self.started > 0
            or self.settled > 0
        )


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
    logger: logging.Logger,
    name: str,
    failure: Failure,
    decision: RetryDecision | None,
    *,
    halted: str = "wedged",
) -> None:
    """One line per failure: WARNING while retrying, ERROR when the attempts run out and the
    subscriber is ``halted`` ("wedged"; a stream-ordered reaction's stream is "parked")."""
    wedged = decision is not None and decision.wedged
    logger.log(
        logging.ERROR if wedged else logging.WARNING,
        "%s failed on event %s (%s), attempt %s: %s%s",
        name,
        failure.event.event_id,
        failure.event.event_type,
        decision.attempts if decision else "?",
        failure.error,
        f" ({halted} until an operator acts)" if wedged else "; will retry",
    )
