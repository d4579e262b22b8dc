"""A subscriber's failure, and the one way a failed attempt is recorded.

A failed attempt is counted on the row the subscriber waits on:

* the bookmark, at the cursor the failure happened at: a projection's batch, a
  global-order reaction's step (only under the claim's lease);
* the bookmark of a reaction whose lease was lost while ``handle`` ran: the result is
  discarded, the attempt counts, and the lease is left to whoever holds it now;
* the work row of a stream-ordered reaction, under the claim's token.

Each of these is a :class:`FailureSite`; :func:`record_failure` makes the one retry
decision (attempts, backoff, wedged or parked) and writes it there.
"""

from __future__ import annotations

import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from django.db.backends.utils import CursorWrapper

from config.options import options
from eventstore.types import Cursor, RecordedEvent
from subscribers import sql
from subscribers.bookmarks import BookmarkState
from subscribers.retry import RetryDecision, decide_retry


@dataclass(frozen=True)
class Failure:
    """An event a subscriber failed on, with the error as the operator will see it."""

    event: RecordedEvent
    error: str
    traceback: str

    @classmethod
    def of(cls, event: RecordedEvent, exc: BaseException) -> Failure:
        text = f"{type(exc).__name__}: {exc}"
        trace = "".join(traceback.format_exception(exc))
        return cls(event, text[:10_000], trace[-50_000:])


@dataclass(frozen=True)
class FailureSite:
    """Where a failed attempt is written: the statement (an UPDATE that returns a row
    only while that row is still the caller's to write), the parameters naming the row,
    and what the row already counts: the event earlier attempts failed on, and how many."""

    statement: str
    row: Mapping[str, int | str]
    failing_event_id: uuid.UUID | None
    attempts: int

    @classmethod
    def bookmark(
        cls, name: str, at: Cursor, state: BookmarkState, *, owner: str = ""
    ) -> FailureSite:
        """The bookmark standing at ``at`` (and leased to ``owner``, when given).

        ``state`` is the row as the caller locked it; its attempts go on counting only
        when it stood at ``at``: a bookmark that moved starts counting afresh.
        """
        same_place = state.cursor == at
        return cls(
            sql.RECORD_FAILURE,
            {"name": name, "tx": at[0], "pos": at[1], "owner": owner, "keep_lease": False},
            state.failing_event_id if same_place else None,
            state.attempts if same_place else 0,
        )

    @classmethod
    def lost_lease(cls, name: str, state: BookmarkState) -> FailureSite:
        """The bookmark of a reaction whose lease was taken over while ``handle`` ran,
        locked where the claim found it (``state``); the lease stays with its holder."""
        return cls(
            sql.RECORD_FAILURE,
            {
                "name": name,
                "tx": state.cursor[0],
                "pos": state.cursor[1],
                "owner": "",
                "keep_lease": True,
            },
            state.failing_event_id,
            state.attempts,
        )

    @classmethod
    def work_row(cls, row_id: int, token: str, event_id: uuid.UUID, attempts: int) -> FailureSite:
        """A stream-ordered reaction's work row, claimed under ``token``, which has failed
        ``attempts`` times on its event so far; when the attempts run out, its stream parks."""
        return cls(sql.FAIL_WORK, {"id": row_id, "token": token}, event_id, attempts)


def record_failure(
    cursor: CursorWrapper, site: FailureSite, failure: Failure
) -> RetryDecision | None:
    """Decide the retry of a failed attempt and write it at ``site``; None when the row
    is no longer the caller's (it moved, or its lease or claim went to another)."""
    opts = options()
    decision = decide_retry(
        failing_event_id=failure.event.event_id,
        previous_failing_event_id=site.failing_event_id,
        previous_attempts=site.attempts,
        max_attempts=opts.max_attempts,
        base_seconds=opts.retry_base_seconds,
        cap_seconds=opts.retry_cap_seconds,
    )
    cursor.execute(
        site.statement,
        {
            **site.row,
            "status": decision.status,
            "wedged": decision.wedged,
            "attempts": decision.attempts,
            "delay": decision.delay_seconds,
            "event_id": failure.event.event_id,
            "error": failure.error,
            "traceback": failure.traceback,
        },
    )
    return decision if cursor.fetchone() is not None else None
