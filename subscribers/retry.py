"""What to do after a subscriber fails on an event: a pure decision, carried out by the worker."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryDecision:
    """The bookmark's next state: attempts made on the failing event, and either a
    delay before the next attempt or ``wedged`` (no retry until an operator acts)."""

    attempts: int
    wedged: bool
    delay_seconds: float | None

    @property
    def status(self) -> str:
        return "wedged" if self.wedged else "retrying"


def decide_retry(
    *,
    failing_event_id: uuid.UUID,
    previous_failing_event_id: uuid.UUID | None,
    previous_attempts: int,
    max_attempts: int,
    base_seconds: float,
    cap_seconds: float,
) -> RetryDecision:
    """Attempts count per failing event; the delay doubles from ``base`` up to ``cap``."""
    same_event = previous_failing_event_id == failing_event_id
    attempts = previous_attempts + 1 if same_event else 1
    if attempts >= max_attempts:
        return RetryDecision(attempts=attempts, wedged=True, delay_seconds=None)
    delay = min(cap_seconds, base_seconds * 2 ** (attempts - 1))
    return RetryDecision(attempts=attempts, wedged=False, delay_seconds=delay)
