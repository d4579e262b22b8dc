"""Why a subscriber is behind, in words: a pure function from a snapshot of facts.

:func:`diagnose` takes a :class:`SubscriberFacts` (read by ``reactions_admin.reads.overview``)
and returns a :class:`Diagnosis`: caught up; catching up at R events/s with an ETA; or
stalled, with every cause that applies (wedged, retrying, streams parked, intake
paused, paused by an operator, the horizon held, no live worker, a lease held by a
worker that stopped beating), and what slows it without stopping it (wake-ups that do
not arrive). Every reading door shows this one diagnosis: the home
page, ``GET /agent/subscribers``, the MCP tool ``diagnose_subscriber`` and
``manage.py subscribers``.

It imports nothing from Django.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from subscribers.json_form import attributes
from subscribers.pace import ago as ago  # re-exported: ``when`` reads with it
from subscribers.pace import duration, eta_seconds

#: A transaction open longer than this, holding committed events back, is a cause (the
#: loader reads only such holders into ``SubscriberFacts.horizon``).
HORIZON_SECONDS = 10.0


class State(enum.Enum):
    """The headline of a diagnosis; the value is its stable code."""

    CAUGHT_UP = "caught_up"
    CATCHING_UP = "catching_up"
    PAUSED = "paused"
    WEDGED = "wedged"
    LEASE_ORPHANED = "lease_orphaned"
    NO_WORKER = "no_worker"
    RETRYING = "retrying"
    PARKED = "parked"
    INTAKE_PAUSED = "intake_paused"
    HORIZON = "horizon"
    WAKEUPS = "wakeups_not_arriving"


@dataclass(frozen=True)
class HorizonFact:
    """The oldest open transaction holding committed events out of every reader's sight."""

    pid: int
    open_seconds: float
    who: str
    #: Committed events it keeps invisible (capped by the reader).
    hidden_events: int


@dataclass(frozen=True)
class LeaseFact:
    """A live lease on the subscriber (its bookmark, or a stream-ordered work row)."""

    owner: str
    #: The owner's heartbeat is recent.
    owner_live: bool
    #: Seconds since the owner's last beat; None when it never beat.
    silent_seconds: float | None


@dataclass(frozen=True)
class SubscriberFacts:
    """Everything the diagnosis looks at, read at one moment (``now``)."""

    name: str
    kind: str
    status: str
    now: datetime
    #: Wanted events under the horizon past the bookmark (capped: ``lag_capped``).
    lag: int
    lag_capped: bool = False
    attempts: int = 0
    max_attempts: int = 5
    failing_event_id: uuid.UUID | None = None
    failing_event_type: str = ""
    last_error: str = ""
    failed_at: datetime | None = None
    next_retry_at: datetime | None = None
    paused_at: datetime | None = None
    paused_by: str = ""
    pause_reason: str = ""
    stream_ordered: bool = False
    parked_streams: int = 0
    oldest_parked: datetime | None = None
    intake_paused_at: datetime | None = None
    #: Stream-ordered rows waiting for a retry (not parked), and the earliest retry.
    retrying_rows: int = 0
    next_row_retry_at: datetime | None = None
    #: Live workers whose heartbeat names this subscriber.
    live_workers: tuple[str, ...] = ()
    #: The poll intervals of those whose wake-ups do not arrive (their own check NOTIFY
    #: never reached them: LISTEN through a transaction pooler): they only poll.
    polling_only: tuple[float, ...] = ()
    leases: tuple[LeaseFact, ...] = ()
    horizon: HorizonFact | None = None
    #: Events per second over the recent past, from the lag history (issue 12's samples);
    #: None when unknown. The ETA, from the same history; without one, ``lag / rate``.
    rate: float | None = None
    eta_seconds: float | None = None


@dataclass(frozen=True)
class Cause:
    """One reason a subscriber is not caught up (or will not stay so)."""

    state: State
    text: str
    #: True when it keeps the subscriber from catching up.
    blocking: bool = True


@dataclass(frozen=True)
class Diagnosis:
    """The verdict: a headline state and sentence, every cause, rate and ETA."""

    state: State
    summary: str
    causes: tuple[Cause, ...] = ()
    rate: float | None = None
    eta_seconds: float | None = None
    lag: int = 0
    failing_event_id: uuid.UUID | None = None

    @property
    def stalled(self) -> bool:
        """Behind (or about to be) and not moving: some cause blocks it."""
        return any(cause.blocking for cause in self.causes)

    @property
    def codes(self) -> frozenset[State]:
        return frozenset(cause.state for cause in self.causes)

    def as_json(self) -> dict[str, Any]:
        """The JSON form every door shows."""
        return {
            "state": self.state.value,
            "summary": self.summary,
            "stalled": self.stalled,
            "causes": [{"state": c.state.value, "text": c.text} for c in self.causes],
            "rate": self.rate,
            "eta_seconds": self.eta_seconds,
        }


@dataclass(frozen=True)
class Counts:
    """The figures at the top of the home page."""

    wedged: int = 0
    retrying: int = 0
    paused: int = 0
    stalled: int = 0
    total: int = 0
    by_state: dict[str, int] = field(default_factory=dict)
    #: Stream-ordered reactions with streams parked: the other streams go on.
    degraded: int = 0

    def as_json(self) -> dict[str, int]:
        return attributes(self, "wedged", "degraded", "retrying", "paused", "stalled", "total")


def count(diagnoses: Iterable[Diagnosis]) -> Counts:
    """Wedged (a wedged bookmark), degraded (streams parked, the others going on),
    retrying, paused, and stalled (any blocking cause) among ``diagnoses``; a subscriber
    both wedged and with streams parked counts in both."""
    wedged = degraded = retrying = paused = stalled = total = 0
    by_state: dict[str, int] = {}
    for diagnosis in diagnoses:
        codes = diagnosis.codes
        total += 1
        wedged += State.WEDGED in codes
        degraded += State.PARKED in codes
        retrying += State.RETRYING in codes
        paused += State.PAUSED in codes
        stalled += diagnosis.stalled
        by_state[diagnosis.state.value] = by_state.get(diagnosis.state.value, 0) + 1
    return Counts(wedged, retrying, paused, stalled, total, by_state, degraded)


def diagnose(facts: SubscriberFacts) -> Diagnosis:
    """Say why ``facts.name`` is where it is. The first cause is the headline; the order
    is: paused, wedged, an orphaned lease, no live worker, retrying, parked streams,
    intake paused, the horizon; with none, catching up or caught up."""
    causes = [c for c in _causes(facts) if c is not None]
    eta = facts.eta_seconds
    if eta is None and facts.lag > 0:
        eta = eta_seconds(facts.lag, facts.rate)
    if causes and any(c.blocking for c in causes):
        headline = next(c for c in causes if c.blocking)
        return Diagnosis(
            headline.state, headline.text, tuple(causes), facts.rate, eta, facts.lag,
            facts.failing_event_id,
        )  # fmt: skip
    if facts.lag > 0:
        text = f"catching up: {_lag(facts)} behind"
        if facts.rate:
            text = f"catching up at {facts.rate:.1f} events/s: {_lag(facts)} behind"
            if eta is not None:
                text += f", ETA {duration(eta)}"
        # Each new event waits for a poll: worth saying in the headline.
        text += "".join(f"; {c.text}" for c in causes if c.state is State.WAKEUPS)
        return Diagnosis(State.CATCHING_UP, text, tuple(causes), facts.rate, eta, facts.lag)
    # Nothing left in the global order, but something to say (streams parked, no worker):
    # a parked stream is the headline; "no live worker" and wake-ups that do not arrive
    # only qualify "caught up".
    notable = [c for c in causes if c.state not in (State.NO_WORKER, State.WAKEUPS)]
    if notable:
        text = "; ".join(c.text for c in [*notable, *(c for c in causes if c not in notable)])
        return Diagnosis(notable[0].state, text, tuple(causes), facts.rate, None, 0)
    text = "caught up"
    if causes:
        text += "; " + "; ".join(c.text for c in causes)
    return Diagnosis(State.CAUGHT_UP, text, tuple(causes), facts.rate, None, 0)


def _causes(facts: SubscriberFacts) -> list[Cause | None]:
    return [
        _paused(facts),
        _wedged(facts),
        *_orphaned_leases(facts),
        _no_worker(facts),
        _retrying(facts),
        _parked(facts),
        _intake_paused(facts),
        _horizon(facts),
        _wakeups(facts),
    ]


def _paused(facts: SubscriberFacts) -> Cause | None:
    if facts.status != "paused":
        return None
    return Cause(
        State.PAUSED, paused_text(facts.paused_by, facts.paused_at, facts.pause_reason, facts.now)
    )


def paused_text(by: str, at: datetime | None, reason: str, now: datetime) -> str:
    """A pause in words, a subscriber's or a rebuild's: "paused by alice since
    2026-11-28 03:11:39 UTC (30 s ago): schema migration"."""
    since = f" since {when(at, now)}" if at else ""
    why = f": {reason}" if reason else ""
    return f"paused by {by or 'an operator'}{since}{why}"


def _wedged(facts: SubscriberFacts) -> Cause | None:
    if facts.status != "wedged":
        return None
    since = f" since {when(facts.failed_at, facts.now)}" if facts.failed_at else ""
    return Cause(
        State.WEDGED,
        f"wedged on event {_event(facts)} with error {_short(facts.last_error)}{since}, "
        f"after {facts.attempts} attempt(s)",
    )


def _retrying(facts: SubscriberFacts) -> Cause | None:
    if facts.status == "retrying":
        nxt = f", next attempt at {when(facts.next_retry_at, facts.now)}"
        return Cause(
            State.RETRYING,
            f"retrying event {_event(facts)} (attempt {facts.attempts} of "
            f"{facts.max_attempts} failed: {_short(facts.last_error)})"
            + (nxt if facts.next_retry_at else ""),
        )
    if facts.retrying_rows:
        nxt = f", next attempt at {when(facts.next_row_retry_at, facts.now)}"
        return Cause(
            State.RETRYING,
            f"retrying {facts.retrying_rows} event(s)" + (nxt if facts.next_row_retry_at else ""),
            blocking=False,
        )
    return None


def _parked(facts: SubscriberFacts) -> Cause | None:
    if not facts.parked_streams:
        return None
    oldest = (
        f", the oldest since {when(facts.oldest_parked, facts.now)}" if facts.oldest_parked else ""
    )
    return Cause(
        State.PARKED,
        f"{facts.parked_streams} stream(s) parked{oldest}; the other streams go on",
        blocking=False,
    )


def _intake_paused(facts: SubscriberFacts) -> Cause | None:
    if facts.intake_paused_at is None:
        return None
    return Cause(
        State.INTAKE_PAUSED,
        f"intake paused at its limit since {when(facts.intake_paused_at, facts.now)}",
    )


def _horizon(facts: SubscriberFacts) -> Cause | None:
    held = facts.horizon
    if held is None or held.hidden_events <= 0:
        return None
    return Cause(
        State.HORIZON,
        f"the horizon is held by backend pid {held.pid} ({held.who}) for "
        f"{held.open_seconds:.0f} s: {held.hidden_events} committed event(s) stay invisible "
        f"(SELECT pg_terminate_backend({held.pid}) ends it)",
        blocking=True,
    )


def _wakeups(facts: SubscriberFacts) -> Cause | None:
    if not facts.polling_only or facts.status == "paused":
        return None
    every = "/".join(f"{seconds:g}" for seconds in sorted(set(facts.polling_only)))
    which = ""
    if len(facts.polling_only) < len(facts.live_workers):
        which = f" on {len(facts.polling_only)} of its {len(facts.live_workers)} workers"
    return Cause(
        State.WAKEUPS,
        f"wake-ups are not arriving{which}; polling every {every} s"
        " (set EVENTDESK_LISTEN_DATABASE_URL: docs/pooler.md)",
        blocking=False,
    )


def _no_worker(facts: SubscriberFacts) -> Cause | None:
    if facts.live_workers or facts.status == "paused":
        return None
    behind = facts.lag > 0 or facts.status in ("retrying",) or facts.retrying_rows > 0
    return Cause(State.NO_WORKER, "no live worker runs it", blocking=behind)


def _orphaned_leases(facts: SubscriberFacts) -> list[Cause | None]:
    causes: list[Cause | None] = []
    for lease in facts.leases:
        if lease.owner_live:
            continue
        silent = (
            f"stopped sending heartbeats {duration(lease.silent_seconds)} ago"
            if lease.silent_seconds is not None
            else "never sent a heartbeat"
        )
        causes.append(
            Cause(
                State.LEASE_ORPHANED, f"its lease is held by worker {lease.owner}, which {silent}"
            )
        )
    return causes


def _event(facts: SubscriberFacts) -> str:
    if facts.failing_event_id is None:
        return "(unknown)"
    kind = f" ({facts.failing_event_type})" if facts.failing_event_type else ""
    return f"{facts.failing_event_id}{kind}"


def _lag(facts: SubscriberFacts) -> str:
    return f"{facts.lag}{'+' if facts.lag_capped else ''} event(s)"


def _short(text: str, limit: int = 160) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "(none recorded)"
    return line if len(line) <= limit else line[: limit - 1] + "…"


def timestamp(moment: datetime) -> str:
    """A time with seconds and its timezone: "2026-11-28 03:12:09 UTC"."""
    return moment.strftime("%Y-%m-%d %H:%M:%S ") + (moment.tzname() or "UTC")


def when(moment: datetime | None, now: datetime) -> str:
    """``timestamp`` and ``ago`` together: "2026-11-28 03:12:09 UTC (4 min ago)"."""
    if moment is None:
        return "(unknown)"
    return f"{timestamp(moment)} ({ago(moment, now)})"
