"""What a subscriber author writes: a ``Projection`` (fast) or a ``Reaction`` (slow).

Both are structural protocols: any object with the right attributes is one, no
base class needed. Inheriting from them explicitly is allowed and gives the
defaults (``batch_size``, ``event_types``, ``start_at_head``).

Optional on both:

* ``event_types``: the event types wanted (``None``, the default, means every
  event). The bookmark still moves past the others, so they are never rescanned.
* ``start_at_head``: a new bookmark starts at the current head instead of
  before the first event (for a subscriber that only cares about the future).

Optional on a projection (rebuilds, ``subscribers.rebuilds``):

* ``models``: the Django models whose tables it owns, ``models = (Run, ...)``; without
  it, it cannot be rebuilt.
* ``verify(self) -> list[str]``: invariants checked on a rebuild's new tables; any
  problem it returns blocks the swap.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol, runtime_checkable

from eventstore.types import RecordedEvent, StreamAppend

#: A projection that declares no ``batch_size`` gets this.
PROJECTION_BATCH_SIZE = 100
#: A reaction that declares no ``batch_size`` gets this.
REACTION_BATCH_SIZE = 1
#: A reaction's ``ordering``: one global lane (the default) or order within each stream.
ORDERINGS = ("global", "stream")
#: A stream-ordered reaction that declares no ``concurrency`` gets this.
REACTION_CONCURRENCY = 1
#: A stream-ordered reaction that declares no ``intake_limit`` gets this.
INTAKE_LIMIT = 10_000


@runtime_checkable
class Subscriber(Protocol):
    """Anything that follows the event store behind its own bookmark."""

    #: Unique among the configured subscribers; the bookmark's primary key.
    name: str


@runtime_checkable
class Projection(Subscriber, Protocol):
    """Fast: applies events to read-model tables through the ORM.

    The worker calls ``apply`` (or ``apply_batch``) inside the transaction that
    also moves the bookmark, so every event is applied exactly once. Do no slow
    or external work here: that is what a ``Reaction`` is for.

    A projection may also define ``apply_batch(events: list[RecordedEvent]) -> None``
    to write a whole batch at once (one bulk upsert); the worker then uses it
    instead of ``apply``. It must have the same effect as applying the events one
    by one, in order.

    Or it may define ``apply_rows(events: list[RecordedEvent], rows: Rows) -> None``:
    the unit of work (``subscribers.rows.Rows``). It loads the batch's rows once
    (``rows.load``), changes them in memory, and the worker writes each changed row
    once, in the same transaction. The worker then uses it instead of the other two.
    See docs/projections.md for the three ways and what each costs.
    """

    batch_size: int = PROJECTION_BATCH_SIZE
    event_types: Collection[str] | None = None
    start_at_head: bool = False

    def apply(self, event: RecordedEvent) -> None:
        """Write the effect of ``event`` on the read model (no commit: the worker commits)."""
        ...


@runtime_checkable
class Reaction(Subscriber, Protocol):
    """Slow: an LLM call, a mail, a webhook, per event.

    ``handle`` runs with no database transaction open. Its outside effects are
    at-least-once (a crash or a lost lease may run it again for the same event);
    the events it returns are appended exactly once, in the transaction that
    moves the bookmark past ``event``. Declare ``batch_size`` (typically 1).

    ``ordering = "stream"`` with ``concurrency = N`` keeps order within each
    stream only: events of different streams are handled at once, up to N
    ``handle`` calls in flight over all workers, and an event that keeps
    failing parks its own stream instead of stopping the reaction.
    ``batch_size`` does not apply then; ``intake_limit`` bounds the events
    taken in and not finished (streams that are not parked).

    ``handle`` runs in a thread of its own under a lease the worker renews. One that
    runs past ``handle_timeout_seconds`` (the option, or this attribute when the
    reaction declares it) is a failed attempt: retried with backoff, then wedged (a
    stream-ordered reaction parks the stream instead). Its thread is abandoned and
    whatever it returns later is discarded.
    """

    batch_size: int = REACTION_BATCH_SIZE
    ordering: str = "global"
    concurrency: int = REACTION_CONCURRENCY
    intake_limit: int = INTAKE_LIMIT
    event_types: Collection[str] | None = None
    start_at_head: bool = False

    def handle(self, event: RecordedEvent) -> Sequence[StreamAppend] | None:
        """React to ``event``; return the appends the store should record because of it."""
        ...
