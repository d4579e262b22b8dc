"""The worker: a loop for the projections, a loop per reaction, a listener to wake them."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from django.db import InterfaceError, OperationalError, connection, connections
from django.utils import timezone

from config.options import options
from config.pooler import PREPARED_STATEMENT_HINT, prepared_statement_failure
from subscribers import history, sql
from subscribers.bookmarks import ensure_bookmarks
from subscribers.heartbeat import Doing, Heartbeat, leased_reactions
from subscribers.leases import LeaseKeeper
from subscribers.listener import Backoff, WakeupCheck, listen
from subscribers.metrics import WorkerMetrics
from subscribers.outcome import Outcome
from subscribers.progress import Progress
from subscribers.projections import give_up_batch, run_projection_batch
from subscribers.reactions import run_reaction_step
from subscribers.rebuilds.process import RebuildProcess
from subscribers.rebuilds.runner import RebuildRunner
from subscribers.registry import Registered, SubscriberRegistry
from subscribers.stream_scheduler import StreamScheduler
from subscribers.streams import check_orderings
from subscribers.watchdog import BatchWatch

logger = logging.getLogger("eventdesk.worker")

#: First re-check after a notification that found nothing visible yet.
HORIZON_RECHECK_SECONDS = 0.01
#: A global-order reaction's loop gathers the notifications of this long into one step.
#: An append wakes every loop that reads one of its event types (or every type), and a
#: reaction's step is two short write transactions (claim, then settle: the bookmark moves
#: past the events it does not want), so at 200 appends/s of its types a reaction woken by
#: each one would commit 400 times a second beside the projections; its own events are
#: delayed by this much at most (their handle takes seconds). Stream-ordered reactions are
#: not held back: their handles wake their loop.
REACTION_WAKE_GATHER_SECONDS = 0.05
#: Past the shutdown timeout, how long the rebuild process's supervisor may take to kill
#: the process and reap it (it waits the shutdown timeout itself, from its SIGTERM).
REBUILD_KILL_GRACE_SECONDS = 10.0


@dataclass
class _Loop:
    """One loop thread: its subscribers, its wake-up, and the batch it has in flight."""

    entries: list[Registered]
    wake: threading.Event = field(default_factory=threading.Event)
    #: The event types its subscribers read (None: one of them reads every type).
    types: frozenset[str] | None = None
    watch: BatchWatch = field(default_factory=BatchWatch)
    #: Set when the watchdog gave up on a hung batch: the thread stops if it ever returns.
    abandoned: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None


def worker_id() -> str:
    """Who holds a lease: host, process and a random part (a pid may be reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    """Runs the subscribers of ``registry`` against the database.

    Projections share one loop; each reaction has its own, so a slow reaction
    delays neither the projections nor the other reactions. PostgreSQL (row
    locks, leases) coordinates any number of workers on any number of hosts.
    """

    def __init__(
        self,
        registry: SubscriberRegistry,
        *,
        owner: str | None = None,
        metrics: WorkerMetrics | None = None,
        sample_history: bool = False,
        rebuilds: Literal["thread", "process"] = "thread",
    ) -> None:
        """``metrics``: record counters and timings there (``--metrics-port``);
        ``sample_history``: sample the subscribers' lag into the history table;
        ``rebuilds``: run the projections' rebuilds in a thread, or in a child process at
        a lower priority (``run_subscribers``: see ``subscribers.rebuilds.process``)."""
        self.rebuilds = rebuilds
        self.metrics = metrics
        self.registry = metrics.instrument(registry) if metrics else registry
        self.sample_history = sample_history
        self.owner = owner or worker_id()
        #: Every lease the worker's reactions hold (bookmark leases of global-order ones,
        #: work-row leases of stream-ordered ones): one token source, one renewer thread.
        self.leases = LeaseKeeper(self.owner)
        if metrics is not None:
            self.leases.on_renewed = metrics.lease_renewed
        self.stop_event = threading.Event()
        self.crashed: BaseException | None = None
        self._loops: list[_Loop] = []
        self._threads: list[threading.Thread] = []
        #: The scheduler of each stream-ordered reaction, with the event that wakes its loop.
        self._schedulers: dict[str, StreamScheduler] = {}
        #: Whether wake-ups arrive (the listener proves it; the heartbeat and gauge say it).
        self.wakeups = WakeupCheck(
            options().wakeup_check_seconds,
            options().poll_interval_seconds,
            on_change=self._wakeups_changed,
        )
        self._beat: Heartbeat | None = None
        #: The thread that supervises the rebuild process (``rebuilds="process"``).
        self._rebuild_process: threading.Thread | None = None

    # --- one pass at a time (--once) -------------------------------------------------

    def run_once(self) -> int:
        """Process what can be processed now, then return how many events were done.

        A subscriber that fails is left waiting for its retry (or wedged); ``--once``
        does not sleep through backoff. A stream-ordered reaction's ``handle`` calls
        started in a pass are waited for and settled before it returns.
        """
        ensure_bookmarks(self.registry)
        check_orderings(list(self.registry))
        progress = {entry.name: Progress(entry.name) for entry in self.registry}
        wake = threading.Event()
        total = 0
        try:
            with self._renewing():
                while not self.stop_event.is_set():
                    wake.clear()
                    progressed, running = False, False
                    for entry in self.registry:
                        if self.stop_event.is_set():
                            break
                        started = time.perf_counter()
                        outcome = self._step(entry, wake=wake)
                        self._note(progress[entry.name], outcome, started)
                        total += outcome.processed
                        progressed |= outcome.progressed
                        running |= outcome.in_flight > 0
                    if progressed:
                        continue
                    if not running:
                        break
                    # Handle calls still running: the same pass again once one finishes.
                    wake.wait(self._idle_timeout(list(self.registry)))
        finally:
            total += self._close_schedulers(list(self.registry))
        return total

    @contextlib.contextmanager
    def _renewing(self) -> Iterator[None]:
        """The lease renewer for the length of one ``run_once`` (when reactions run)."""
        if not self.registry.reactions:
            yield
            return
        done = threading.Event()
        renewer = threading.Thread(
            target=self.leases.renew_until,
            args=(done,),
            name="eventdesk-lease-renewer",
            daemon=True,
        )
        renewer.start()
        try:
            yield
        finally:
            done.set()
            renewer.join()

    # --- threads ---------------------------------------------------------------------

    def start(self, *, listen_for_notifications: bool = True) -> None:
        """Start the loops (and the listener) in background threads.

        Raises ``OrderingSwitchRefused`` when a reaction was switched from stream to
        global ordering with work rows left.
        """
        try:
            check_orderings(list(self.registry))
        except (OperationalError, InterfaceError) as exc:
            logger.warning("could not check the reactions' orderings yet (%s)", exc)
        finally:
            # The calling thread only waits from now on: it keeps no connection open.
            _discard_connection()
        groups: list[list[Registered]] = []
        if self.registry.projections:
            groups.append(self.registry.projections)
        groups.extend([entry] for entry in self.registry.reactions)
        for group in groups:
            self._start_loop(group)
        if listen_for_notifications and groups:
            self._spawn(
                "eventdesk-listener",
                lambda: listen(self.wake_for, self.stop_event, self.wakeups),
            )
        if self.registry.projections:
            self._spawn("eventdesk-watchdog", self._watch_batches)
            if self.rebuilds == "process":
                names = [entry.name for entry in self.registry.projections]
                child = RebuildProcess(names, self.owner, self.stop_event)
                self._rebuild_process = self._spawn("eventdesk-rebuild-process", child.run)
            else:
                runner = RebuildRunner(self.registry.projections, self.owner, self.stop_event)
                self._spawn("eventdesk-rebuilds", runner.run)
        if self.registry.reactions:
            # Renews while a stopping worker's last handles finish, then ends.
            self._spawn("eventdesk-lease-renewer", lambda: self.leases.renew_until(self.stop_event))
        if self.sample_history and groups:
            self._spawn("eventdesk-history", self._sample_history)
        self._beat = self._heartbeat()
        self._spawn("eventdesk-heartbeat", self._beat.run)
        logger.info(
            "worker %s started: %d projection(s), %d reaction(s)",
            self.owner,
            len(self.registry.projections),
            len(self.registry.reactions),
        )

    def wake(self) -> None:
        """Make every loop look for new events now."""
        self.wake_for(None)

    def wake_for(self, types: frozenset[str] | None) -> None:
        """A NOTIFY arrived for events of ``types`` (None: of any type): wake the loops
        whose subscribers read one of them. A loop left asleep has nothing to do (its
        subscribers skip those events, and its lag counts only the types it reads); it
        still polls."""
        for loop in list(self._loops):
            if types is None or loop.types is None or not loop.types.isdisjoint(types):
                loop.wake.set()

    def request_stop(self) -> None:
        """Finish the current batches and stop. Never call it from a signal handler: it
        takes locks (see ``subscribers.shutdown``)."""
        self.stop_event.set()
        self.wake()

    def join(self, timeout: float) -> bool:
        """Wait for the threads up to ``timeout`` seconds; True when all have ended.

        The rebuild process's supervisor gives its process ``timeout`` seconds from its
        SIGTERM, then kills it: it is waited for that long and the kill's grace more, so
        that a slow rebuild process is killed and reaped, not taken for an abandoned batch.
        """
        deadline = time.monotonic() + timeout
        # A loop stuck in a batch the watchdog gave up on is not waited for.
        stuck = {loop.thread for loop in self._loops if loop.abandoned.is_set()}
        threads = [thread for thread in self._threads if thread not in stuck]
        for thread in threads:
            if thread is self._rebuild_process:
                continue
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._rebuild_process is not None:
            grace = REBUILD_KILL_GRACE_SECONDS
            self._rebuild_process.join(max(0.0, deadline - time.monotonic()) + grace)
        return not any(thread.is_alive() for thread in threads)

    def run(self) -> int:
        """Run until ``request_stop``; return the exit status (0, or 1 after a crash)."""
        self.start()
        while not self.stop_event.wait(0.5):
            pass
        timeout = options().shutdown_timeout_seconds
        if not self.join(timeout):
            logger.warning(
                "the current batch did not finish within %.0fs: abandoned (its transaction"
                " rolls back; a reaction's lease is released)",
                timeout,
            )
            self.release_leases()
        connections.close_all()
        return 1 if self.crashed is not None else 0

    def run_rebuilds(self) -> int:
        """Only the projections' rebuilds, until ``request_stop`` (``run_subscribers
        --rebuilds-only``, the worker's child); the exit status, as ``run``."""
        runner = RebuildRunner(self.registry.projections, self.owner, self.stop_event)
        self._spawn("eventdesk-rebuilds", runner.run)
        while not self.stop_event.wait(0.5):
            pass
        self.join(options().shutdown_timeout_seconds)
        connections.close_all()
        return 1 if self.crashed is not None else 0

    def release_leases(self) -> None:
        """Give back every lease this worker holds, so another need not wait for expiry."""
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql.RELEASE_ALL_LEASES, {"owner": self.owner})
        except (OperationalError, InterfaceError) as exc:
            logger.warning("could not release the leases of %s: %s", self.owner, exc)

    def _start_loop(self, entries: list[Registered]) -> None:
        loop = _Loop(entries, types=_types_read(entries))
        label = "projections" if entries[0].kind == "projection" else entries[0].name
        loop.thread = self._spawn(f"eventdesk-{label}", functools.partial(self._loop, loop))
        self._loops.append(loop)

    def _spawn(self, name: str, target: Callable[[], None]) -> threading.Thread:
        def body() -> None:
            try:
                target()
            except BaseException as exc:
                # A dead loop must not leave the worker quietly degraded: stop it all.
                self.crashed = exc
                logger.exception("%s crashed; stopping the worker", name)
                if prepared_statement_failure(exc):
                    logger.error("%s", PREPARED_STATEMENT_HINT)
                self.request_stop()
            finally:
                connections.close_all()

        thread = threading.Thread(target=body, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()
        return thread

    def _step(
        self,
        entry: Registered,
        watch: BatchWatch | None = None,
        *,
        wake: threading.Event | None = None,
    ) -> Outcome:
        if entry.kind == "projection":
            return run_projection_batch(entry, watch)
        if entry.stream_ordered:
            scheduler = self._schedulers.get(entry.name)
            if scheduler is None:
                scheduler = StreamScheduler(entry, self.leases, wake or threading.Event())
                self._schedulers[entry.name] = scheduler
            return scheduler.step(stopping=self.stop_event.is_set())
        return run_reaction_step(entry, self.leases, should_stop=self.stop_event.is_set)

    def _note(self, progress: Progress, outcome: Outcome, started: float) -> None:
        """What a step did: the progress lines, and the worker's metrics."""
        progress.note(outcome)
        if self.metrics is not None:
            self.metrics.record(outcome, time.perf_counter() - started)

    def _sample_history(self) -> None:
        """Sample the subscribers' cursor and lag every ``history_sample_seconds``, and
        prune what is past the retention about once a minute."""
        entries = list(self.registry)
        pruned = 0.0
        while not self.stop_event.wait(options().history_sample_seconds):
            try:
                history.sample(entries)
                if time.monotonic() - pruned >= 60:
                    history.prune()
                    pruned = time.monotonic()
            except (OperationalError, InterfaceError) as exc:
                # The loops report a lost database; the history only misses a sample.
                logger.debug("could not sample the lag history (%s)", exc)
                _discard_connection()

    def _close_schedulers(self, entries: list[Registered]) -> int:
        """Let the stream-ordered reactions' running handle calls finish and settle them;
        return how many events that handled."""
        done = 0
        for entry in entries:
            scheduler = self._schedulers.pop(entry.name, None)
            if scheduler is None:
                continue
            try:
                done += scheduler.close(options().shutdown_timeout_seconds)
            except (OperationalError, InterfaceError) as exc:
                # The claims not settled expire; their events run again elsewhere.
                logger.warning("could not settle the last results of %s: %s", entry.name, exc)
        return done

    # --- heartbeat (the console's Workers page) ---------------------------------------

    def _heartbeat(self) -> Heartbeat:
        names = [entry.name for entry in self.registry]
        interval = options().poll_interval_seconds
        return Heartbeat(
            self.owner, names, self.doing, self.stop_event, interval, lambda: self.wakeups.working
        )

    def _wakeups_changed(self, working: bool) -> None:
        if self.metrics is not None:
            self.metrics.wakeups_changed(working)
        if self._beat is not None:
            self._beat.poke()  # the console shows it now, not an interval later

    def doing(self) -> list[Doing]:
        """What this worker is working on now: the projection batches in flight, the
        stream-ordered reactions' ``handle`` calls, the global-order reactions it leases."""
        found: list[Doing] = []
        for loop in list(self._loops):
            current = loop.watch.current()
            if current is not None:
                found.append(current)
        for scheduler in list(self._schedulers.values()):
            found.extend(scheduler.doing())
        types = {
            entry.name: list(entry.event_types)
            for entry in self.registry.reactions
            if entry.event_types is not None and not entry.stream_ordered
        }
        if any(not entry.stream_ordered for entry in self.registry.reactions):
            found.extend(leased_reactions(self.owner, types))
        return found

    def _watch_batches(self) -> None:
        """Give up on a projection batch that runs past ``batch_timeout_seconds``."""
        timeout = options().batch_timeout_seconds
        while not self.stop_event.wait(min(0.25, timeout / 4)):
            for loop in list(self._loops):
                busy = loop.watch.overdue(timeout)
                if busy is None or loop.abandoned.is_set():
                    continue
                # The stuck thread cannot be interrupted: abandon it, end its session,
                # record the timeout (retried, then wedged) and put a fresh loop in its place.
                loop.abandoned.set()
                logger.error(
                    "%s: a batch ran past %gs (on event %s); abandoning it",
                    busy.entry.name,
                    timeout,
                    busy.event.event_id,
                )
                try:
                    give_up_batch(busy, timeout)
                except (OperationalError, InterfaceError) as exc:
                    logger.warning("could not record the timeout of %s: %s", busy.entry.name, exc)
                    _discard_connection()
                self._start_loop(loop.entries)

    def _loop(self, loop: _Loop) -> None:
        """Work the loop's subscribers until stopped (or abandoned): on a wake-up, every
        poll interval, or at a retry."""
        try:
            self._work(loop)
        finally:
            self._close_schedulers(loop.entries)

    def _work(self, loop: _Loop) -> None:
        entries, wake = loop.entries, loop.wake
        gather = all(entry.kind == "reaction" and not entry.stream_ordered for entry in entries)
        progress = {entry.name: Progress(entry.name) for entry in entries}
        backoff = Backoff()
        ready = False
        # A notification whose events are not visible yet (an older transaction, anywhere
        # on the server, still holds the horizon): look again soon, 10 ms doubling,
        # rather than a whole poll interval later.
        recheck: float | None = None
        while not self.stop_event.is_set() and not loop.abandoned.is_set():
            wake.clear()
            try:
                if not ready:
                    ensure_bookmarks(entries)
                    check_orderings(entries)
                    ready = True
                progressed = False
                for entry in entries:
                    if self.stop_event.is_set() or loop.abandoned.is_set():
                        return
                    started = time.perf_counter()
                    outcome = self._step(entry, loop.watch, wake=wake)
                    self._note(progress[entry.name], outcome, started)
                    progressed |= outcome.progressed
                if progressed:
                    backoff.reset()
                    recheck = None
                    continue
                timeout = idle = self._idle_timeout(entries)
                if recheck is not None:
                    timeout = min(idle, recheck)
                    recheck = recheck * 2 if recheck * 2 < idle else None
                backoff.reset()
            except Exception as exc:
                if loop.abandoned.is_set():
                    # The batch the watchdog gave up on came back late, on its ended session:
                    # its timeout is recorded and a fresh loop works in its place. Crashing
                    # here would stop the whole worker.
                    logger.info("an abandoned batch returned (%s: %s)", type(exc).__name__, exc)
                    return
                if not isinstance(exc, OperationalError | InterfaceError):
                    raise
                delay = backoff.next()
                logger.warning("database error (%s); retrying in %.1fs", exc, delay)
                _discard_connection()
                self.stop_event.wait(delay)
                continue
            if wake.wait(timeout):
                recheck = HORIZON_RECHECK_SECONDS
                if gather:
                    self.stop_event.wait(REACTION_WAKE_GATHER_SECONDS)

    def _idle_timeout(self, entries: list[Registered]) -> float:
        """Until the next poll, or sooner when a retry falls due."""
        poll = options().poll_interval_seconds
        with connection.cursor() as cursor:
            cursor.execute(sql.NEXT_RETRY, {"names": [entry.name for entry in entries]})
            row = cursor.fetchone()
        due: datetime | None = row[0] if row else None
        for entry in entries:
            scheduler = self._schedulers.get(entry.name)
            if scheduler is not None:
                poll = min(poll, scheduler.next_wake(poll))
        if due is None:
            return poll
        return max(0.01, min(poll, (due - timezone.now()).total_seconds() + 0.01))


def _types_read(entries: list[Registered]) -> frozenset[str] | None:
    """The event types a loop's subscribers read together (None: every type)."""
    types: set[str] = set()
    for entry in entries:
        if entry.event_types is None:
            return None
        types.update(entry.event_types)
    return frozenset(types)


def _discard_connection() -> None:
    try:
        connection.close()
    except Exception:  # a broken connection may fail to close; it is dropped either way
        connection.connection = None
