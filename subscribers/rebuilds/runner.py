"""The worker side of rebuilds: find them in the database, claim one, do its next step.

Any worker configured with the projection runs its rebuild. A batch holds the rebuild
row with ``FOR UPDATE SKIP LOCKED`` for its (short) transaction, like a projection's
bookmark; the long steps (building indexes, the comparison) hold no transaction and
run under a lease instead. Everything a step writes commits with the rebuild's
bookmark, so a worker killed anywhere leaves the rebuild where its last commit put it,
and the next worker resumes from there.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Any

from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
    connection,
    transaction,
)
from django.utils import timezone

import subscribers.rebuilds.sql as sql
from config.options import options
from eventstore.horizon import exempt_from_horizon
from eventstore.types import Cursor
from subscribers import sql as subscribers_sql
from subscribers.failures import Failure
from subscribers.models import Rebuild
from subscribers.outcome import is_connection_error
from subscribers.rebuilds.audit import record_decision, user_by_id
from subscribers.rebuilds.definition import clone, index_statement, qi, secondary_indexes
from subscribers.rebuilds.errors import RebuildRefused
from subscribers.rebuilds.exchange import drop_kept
from subscribers.rebuilds.guard import denied_table
from subscribers.rebuilds.replay import count_upto, replay_batch
from subscribers.rebuilds.steps import drop_rebuild_role, summary, swap_rebuild, with_lock_retries
from subscribers.rebuilds.verify import line_up_and_compare, own_connection, run_verify
from subscribers.registry import Registered, SubscriberRegistry
from subscribers.retry import decide_retry

logger = logging.getLogger("eventdesk.rebuilds")

#: A batch aims at transactions this short (the batch size adapts to it).
TARGET_BATCH_SECONDS = 0.2
#: The smallest batch the adaptation goes down to.
MIN_BATCH = 20
#: The catch-up done while the live bookmark is held for the line-up stays this small
#: (the live projection passes over its bookmark meanwhile); a bigger gap is caught up
#: first, with the live bookmark free.
LINE_UP_MAX_EVENTS = 200
#: Line-up attempts before going back to catching up.
LINE_UP_TRIES = 20
#: How often a worker looks for kept tables past their window.
CLEANUP_EVERY_SECONDS = 60.0
#: How long the cleanup waits for a lock on kept tables (a reader of them) before it
#: leaves them to its next pass: short, because its transaction (it appends a decision)
#: holds every reader of events back meanwhile. An ACCESS EXCLUSIVE lock takes an xid
#: before it waits (PostgreSQL logs it for standbys).
CLEANUP_LOCK_TIMEOUT = "100ms"
#: The note on a rebuild whose automatic swap was refused (not tried again by itself).
AUTO_SWAP_REFUSED = "the automatic swap was refused"
#: Recount the events left every this many batches (progress).
RECOUNT_EVERY = 25

_BATCH_PHASES = (Rebuild.Phase.BUILDING, Rebuild.Phase.CATCHING_UP, Rebuild.Phase.READY)
_LONG_PHASES = (Rebuild.Phase.INDEXING, Rebuild.Phase.VERIFYING)


class RebuildRunner:
    """Runs the rebuilds of ``projections`` (the ones this worker is configured with)."""

    def __init__(
        self,
        projections: list[Registered],
        owner: str,
        stop: threading.Event | None = None,
    ) -> None:
        self.entries = {entry.name: entry for entry in projections if entry.kind == "projection"}
        self.registry = SubscriberRegistry(self.entries.values())
        self.owner = owner
        self.stop = stop or threading.Event()
        self._batches = 0
        self._cleaned = 0.0
        #: A batch that wedged on an event: (rebuild id, event id), failed after it.
        self._wedged: tuple[int, str] | None = None

    # --- the loop ------------------------------------------------------------------------

    def run(self) -> None:
        """Work rebuilds until ``stop``; idle, look again every second at most."""
        delay = 0.5
        while not self.stop.is_set():
            try:
                progressed = self.step()
                if time.monotonic() - self._cleaned >= CLEANUP_EVERY_SECONDS:
                    self._cleaned = time.monotonic()
                    self.clean_up()
                delay = 0.5
            except (OperationalError, InterfaceError) as exc:
                logger.warning("rebuilds: database error (%s); retrying in %.1fs", exc, delay)
                _discard_connection()
                self.stop.wait(delay)
                delay = min(delay * 2, 30.0)
                continue
            if not progressed:
                self.stop.wait(min(options().poll_interval_seconds, 1.0))

    def step(self) -> bool:
        """Do one unit of work on one rebuild; False when none had work."""
        if not self.entries:
            return False
        self._wedged = None
        progressed = self._step()
        if self._wedged is not None:
            self._fail_wedged(*self._wedged)
        return progressed

    def _step(self) -> bool:
        claimed: int | None = None
        try:
            with transaction.atomic():
                # It writes only the rebuild's tables and row: no reader waits for it. Its
                # decisions (RebuildFailed) are appended after it, in a transaction of
                # their own.
                exempt_from_horizon()
                with connection.cursor() as cursor:
                    # Bounded like a live batch: a hung statement or a batch idling in
                    # Python ends, and with it the transaction that holds the horizon.
                    ms = str(int(options().batch_timeout_seconds * 1000))
                    cursor.execute(subscribers_sql.BATCH_TIMEOUTS, {"ms": ms})
                    # No flush to disk per batch: a crash loses at most the last batches,
                    # tables and bookmark together (one transaction), and they are redone.
                    cursor.execute(sql.NO_FSYNC_WAIT)
                rebuild = self._claim()
                if rebuild is None:
                    return False
                claimed, entry = rebuild.pk, self.entries[rebuild.projection_name]
                if rebuild.phase == Rebuild.Phase.COPYING_SCHEMA:
                    self._copy_schema(rebuild, entry)
                    return True
                if rebuild.phase in _BATCH_PHASES:
                    progressed = self._batch(rebuild, entry)
                    if not self._swap_due(rebuild):
                        return progressed
                else:
                    with connection.cursor() as cursor:
                        cursor.execute(
                            sql.TAKE_LEASE,
                            {
                                "id": rebuild.pk,
                                "owner": self.owner,
                                "secs": options().lease_seconds,
                            },
                        )
            if rebuild.phase == Rebuild.Phase.READY:
                # A swap of --swap-when-verified not done yet (refused for locks, or its
                # worker died in it): again, outside the batch's transaction.
                return self._swap_when_verified(rebuild)
            if rebuild.phase == Rebuild.Phase.INDEXING:
                self._build_indexes(rebuild)
            else:
                self._verify(rebuild, entry)
            return True
        except Exception as exc:
            if is_connection_error(exc) or claimed is None:
                raise
            logger.exception("rebuild %s: step failed", claimed)
            self._record_error(claimed, exc)
            return True

    def _claim(self) -> Rebuild | None:
        with connection.cursor() as cursor:
            cursor.execute(
                sql.CLAIM,
                {
                    "names": list(self.entries),
                    "phases": [str(p) for p in (Rebuild.Phase.COPYING_SCHEMA, *_BATCH_PHASES,
                                                 *_LONG_PHASES)],
                    "owner": self.owner,
                },
            )  # fmt: skip
            row = cursor.fetchone()
        return None if row is None else Rebuild.objects.get(pk=row[0])

    # --- copying schema ------------------------------------------------------------------

    def _copy_schema(self, rebuild: Rebuild, entry: Registered) -> None:
        """The schemas (the new tables', the kept tables' at the swap), the role and the
        empty tables, in the claim's transaction: all or nothing."""
        tables = [str(t["table"]) for t in rebuild.tables]
        live_schema = str(rebuild.tables[0]["schema"])
        role = qi(rebuild.role_name)
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', '5s', true)")
            cursor.execute(f"CREATE SCHEMA {qi(rebuild.schema)}")
            # Where the live tables go at the swap, made now: the swap's transaction, which
            # every reader of events waits for, does not have to.
            cursor.execute(f"CREATE SCHEMA {qi(rebuild.kept_schema)}")
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [rebuild.role_name])
            if cursor.fetchone() is None:
                cursor.execute(f"CREATE ROLE {role} NOLOGIN")
            cursor.execute(f"GRANT {role} TO CURRENT_USER")
            cursor.execute(f"GRANT pg_read_all_data TO {role}")
            definitions = clone(cursor, live_schema, rebuild.schema, tables, rebuild.role_name)
        rebuild.definitions = definitions
        rebuild.batch_size = options().rebuild_batch_size
        rebuild.events_total = self._remaining(rebuild, entry)
        self._move_to(rebuild, Rebuild.Phase.BUILDING)
        rebuild.save()
        logger.info("rebuild of %s: tables copied into %s", entry.name, rebuild.schema)

    # --- batches ---------------------------------------------------------------------------

    def _live(self, name: str) -> Cursor:
        with connection.cursor() as cursor:
            cursor.execute(sql.LIVE_CURSOR, {"name": name})
            row = cursor.fetchone()
        return Cursor(int(row[0]), int(row[1])) if row else Cursor(0, 0)

    def _batch(self, rebuild: Rebuild, entry: Registered) -> bool:
        """Replay the next batch, never past the live projection, in the claim's transaction."""
        live = self._live(entry.name)
        if rebuild.cursor >= live:
            return self._caught_up(rebuild)
        started = time.perf_counter()
        done = replay_batch(rebuild, entry, live, rebuild.batch_size)
        elapsed = max(time.perf_counter() - started, 1e-6)
        moved = done.position > rebuild.cursor
        rebuild.last_transaction_id, rebuild.last_position = done.position
        rebuild.events_done += done.applied
        if done.applied:
            current = done.applied / elapsed
            rebuild.rate = current if rebuild.rate <= 0 else 0.7 * rebuild.rate + 0.3 * current
        if done.full:
            wanted = int(rebuild.batch_size * TARGET_BATCH_SECONDS / elapsed)
            rebuild.batch_size = max(MIN_BATCH, min(options().rebuild_batch_size, wanted))
        self._batches += 1
        if self._batches % RECOUNT_EVERY == 1:
            # New tables have no statistics (autovacuum comes a minute late at best): each
            # batch's load then seq-scanned the growing table.
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE " + ", ".join(f"{qi(rebuild.schema)}.{qi(str(t['table']))}"
                                                      for t in rebuild.tables))  # fmt: skip
        if self._batches % RECOUNT_EVERY == 0 or not done.full:
            rebuild.events_total = rebuild.events_done + self._remaining(rebuild, entry)
        if done.failure is not None:
            self._record_failure(rebuild, done.failure)
        elif moved:
            rebuild.attempts, rebuild.failing_event_id, rebuild.last_error = 0, None, ""
            rebuild.last_traceback, rebuild.next_retry_at = "", None
        rebuild.updated_at = timezone.now()
        if done.failure is None and not done.full and rebuild.cursor >= live:
            self._caught_up(rebuild)
        rebuild.save()
        return moved or done.failure is not None

    def _caught_up(self, rebuild: Rebuild) -> bool:
        """At the live position: building goes on to indexing, catching up to verifying."""
        following = {
            Rebuild.Phase.BUILDING: Rebuild.Phase.INDEXING,
            Rebuild.Phase.CATCHING_UP: Rebuild.Phase.VERIFYING,
        }.get(Rebuild.Phase(rebuild.phase))
        if following is None:
            return False
        self._move_to(rebuild, following)
        rebuild.save()
        return True

    def _remaining(self, rebuild: Rebuild, entry: Registered) -> int:
        return count_upto(entry, rebuild.cursor, self._live(entry.name))

    @staticmethod
    def _move_to(rebuild: Rebuild, phase: str) -> None:
        rebuild.phase = phase
        rebuild.phase_changed_at = rebuild.updated_at = timezone.now()
        rebuild.lease_owner, rebuild.lease_expires_at = "", None

    # --- failures ----------------------------------------------------------------------------

    def _record_failure(self, rebuild: Rebuild, failure: Failure) -> None:
        """A failed event: retried with backoff, then the rebuild is *failed*. A write the
        guard refused fails it at once (the code wrote outside its declared tables)."""
        table = denied_table(failure.error)
        error = failure.error
        if table is not None:
            error = (
                f"the projection wrote to the table {table}, which it does not declare in"
                f" models (or names by its schema): the rebuild may write only its own new"
                f" tables. {failure.error}"
            )
        decision = decide_retry(
            failing_event_id=failure.event.event_id,
            previous_failing_event_id=rebuild.failing_event_id,
            previous_attempts=rebuild.attempts,
            max_attempts=1 if table is not None else options().max_attempts,
            base_seconds=options().retry_base_seconds,
            cap_seconds=options().retry_cap_seconds,
        )
        rebuild.attempts, rebuild.failing_event_id = decision.attempts, failure.event.event_id
        rebuild.last_error, rebuild.last_traceback = error[:10_000], failure.traceback
        rebuild.failed_at = timezone.now()
        if decision.wedged:
            # Failed in a transaction of its own, after this one (which may append nothing).
            rebuild.next_retry_at = None
            self._wedged = (rebuild.pk, str(failure.event.event_id))
        else:
            delay = decision.delay_seconds or 0.0
            rebuild.next_retry_at = timezone.now() + timedelta(seconds=delay)

    def _fail_wedged(self, rebuild_id: int, event_id: str) -> None:
        """The rebuild whose batch wedged on ``event_id`` is *failed*, with its decision."""
        with transaction.atomic():
            rebuild = Rebuild.objects.select_for_update().filter(pk=rebuild_id).first()
            if rebuild is None or rebuild.phase not in _BATCH_PHASES:
                return  # failed, paused or cancelled meanwhile
            self._fail(rebuild, event_id)
            rebuild.save()

    def _fail(self, rebuild: Rebuild, event_id: str | None) -> None:
        phase = rebuild.phase
        rebuild.resume_phase = phase
        self._move_to(rebuild, Rebuild.Phase.FAILED)
        rebuild.next_retry_at = None
        record_decision(
            "RebuildFailed",
            projection=rebuild.projection_name,
            inputs={
                "rebuild_id": rebuild.pk,
                "phase": phase,
                "event_id": event_id,
                "error": rebuild.last_error[:2000],
                "attempts": rebuild.attempts,
                "position": [rebuild.last_transaction_id, rebuild.last_position],
            },
            actor=None,
            reason="the rebuild kept failing; the operator cancels it or retries it",
        )
        logger.error("rebuild of %s failed: %s", rebuild.projection_name, rebuild.last_error)

    def _record_error(self, rebuild_id: int, exc: BaseException) -> None:
        """A step failed outside any event (DDL, a lock, the comparison): retry, then fail."""
        text = f"{type(exc).__name__}: {exc}"[:10_000]
        with transaction.atomic():
            rebuild = Rebuild.objects.select_for_update().filter(pk=rebuild_id).first()
            if rebuild is None or rebuild.phase not in Rebuild.WORKED_PHASES:
                return
            rebuild.attempts += 1
            rebuild.last_error, rebuild.failed_at = text, timezone.now()
            rebuild.lease_owner, rebuild.lease_expires_at = "", None
            if rebuild.attempts >= options().max_attempts:
                self._fail(rebuild, None)
            else:
                delay = min(
                    options().retry_cap_seconds,
                    options().retry_base_seconds * 2 ** (rebuild.attempts - 1),
                )
                rebuild.next_retry_at = timezone.now() + timedelta(seconds=delay)
            rebuild.save()

    # --- indexing ----------------------------------------------------------------------------

    def _build_indexes(self, rebuild: Rebuild) -> None:
        """Each secondary index, concurrently, on a connection of its own: no transaction
        stays open (and no transaction id is held) while an index is built. An index left
        invalid by a killed build is dropped and built again."""
        with own_connection(autocommit=True, purpose="index") as conn:
            for t in rebuild.tables:
                table = str(t["table"])
                for name, definition in secondary_indexes(rebuild.definitions[table]).items():
                    row = conn.execute(
                        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c"
                        " ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
                        " WHERE n.nspname = %s AND c.relname = %s",
                        [rebuild.schema, name],
                    ).fetchone()
                    if row is not None and row[0]:
                        continue
                    if row is not None:
                        conn.execute(f"DROP INDEX CONCURRENTLY {qi(rebuild.schema)}.{qi(name)}")
                    conn.execute(
                        index_statement(definition, rebuild.schema, table, concurrently=True)
                    )
                    self._renew(rebuild)
        self._end_long_step(rebuild, Rebuild.Phase.INDEXING, Rebuild.Phase.CATCHING_UP)

    def _renew(self, rebuild: Rebuild) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                sql.TAKE_LEASE,
                {"id": rebuild.pk, "owner": self.owner, "secs": options().lease_seconds},
            )

    def _end_long_step(
        self, rebuild: Rebuild, phase: str, following: str, **changes: Any
    ) -> Rebuild | None:
        """Move on from a long step, if the lease is still ours and nobody moved it."""
        with transaction.atomic():
            current = Rebuild.objects.select_for_update().filter(pk=rebuild.pk).first()
            if current is None or current.phase != phase or current.lease_owner != self.owner:
                return None
            for key, value in changes.items():
                setattr(current, key, value)
            current.attempts, current.last_error = 0, ""
            self._move_to(current, following)
            current.save()
            return current

    # --- verifying ---------------------------------------------------------------------------

    def _verify(self, rebuild: Rebuild, entry: Registered) -> None:
        """Line both bookmarks up, compare in a read-only snapshot, run ``verify()``."""

        def catch_up(upto: Cursor) -> Cursor:
            with transaction.atomic():
                exempt_from_horizon()  # it appends nothing: a failure raises
                current = Rebuild.objects.select_for_update().get(pk=rebuild.pk)
                events = 0
                while current.cursor < upto and events < LINE_UP_MAX_EVENTS:
                    done = replay_batch(current, entry, upto, max(current.batch_size, 100))
                    if done.failure is not None:
                        raise RuntimeError(f"event {done.failure.event.event_id} failed:"
                                           f" {done.failure.error}")  # fmt: skip
                    current.last_transaction_id, current.last_position = done.position
                    current.events_done += done.applied
                    events += done.applied
                    if not done.full:
                        break
                current.updated_at = timezone.now()
                current.save()
                rebuild.last_transaction_id, rebuild.last_position = current.cursor
                return current.cursor

        comparison = None
        for attempt in range(LINE_UP_TRIES):
            catch_up(self._live(entry.name))  # most of the gap, the live bookmark free
            comparison = line_up_and_compare(rebuild, entry, catch_up)
            if comparison is not None or self.stop.is_set():
                break
            time.sleep(0.05 * (attempt + 1))
        if comparison is None:
            self._end_long_step(rebuild, Rebuild.Phase.VERIFYING, Rebuild.Phase.CATCHING_UP)
            return
        comparison["problems"] = run_verify(rebuild, entry)
        verified = self._end_long_step(
            rebuild,
            Rebuild.Phase.VERIFYING,
            Rebuild.Phase.READY,
            verification=comparison,
            verified_at=timezone.now(),
        )
        if verified is not None and self._swap_due(verified):
            self._swap_when_verified(verified)

    @staticmethod
    def _swap_due(rebuild: Rebuild) -> bool:
        """A verified rebuild started with --swap-when-verified, whose swap is not refused."""
        return (
            rebuild.phase == Rebuild.Phase.READY
            and rebuild.swap_when_verified
            and rebuild.verification is not None
            and not rebuild.verification.get("problems")
            and not rebuild.note.startswith(AUTO_SWAP_REFUSED)
        )

    def _swap_when_verified(self, rebuild: Rebuild) -> bool:
        """``--swap-when-verified``: the swap, audited with the starter as the actor; True
        when it swapped."""
        name = rebuild.projection_name

        def act() -> None:
            starter = user_by_id(rebuild.started_by_id)  # read before the swap's xid
            with transaction.atomic(durable=True):
                result = swap_rebuild(name, registry=self.registry)
                record_decision(
                    "RebuildSwapped",
                    projection=name,
                    inputs={
                        **result.as_inputs(),
                        "automatic": True,
                        "diff": rebuild.verification,
                    },
                    actor=starter,
                    reason=rebuild.reason,
                )

        try:
            with_lock_retries(act, name=name)
        except RebuildRefused as refused:
            Rebuild.objects.filter(pk=rebuild.pk).update(
                note=f"{AUTO_SWAP_REFUSED}: {refused.detail}"[:2000]
            )
            logger.warning("rebuild of %s: automatic swap refused: %s", name, refused)
            return False
        logger.info("rebuild of %s: swapped in (--swap-when-verified)", name)
        return True

    # --- cleanup -----------------------------------------------------------------------------

    def clean_up(self) -> int:
        """Drop the kept tables past their window or left by a later swap, each with its
        decision (the system's), and the roles a swap left; the kept schemas dropped.

        Each drop first takes the kept tables' locks, waiting for a reader of them at
        most ``CLEANUP_LOCK_TIMEOUT`` (its transaction, which appends the decision, holds
        every reader of events back meanwhile); tables it cannot have now are left for
        the next pass, and logged."""
        dropped = 0
        skipped: set[int] = set()
        while not self.stop.is_set():
            with connection.cursor() as cursor:
                cursor.execute(sql.KEPT_EXPIRED, {"skipped": list(skipped)})
                row = cursor.fetchone()
            if row is None:
                break
            rebuild_id, window_over = int(row[0]), bool(row[1])
            try:
                if self._drop_kept_with_decision(rebuild_id, window_over):
                    dropped += 1
            except (OperationalError, ProgrammingError) as exc:
                if is_connection_error(exc):
                    raise
                logger.warning(
                    "rebuild %s: its kept tables could not be dropped now (%s); next pass",
                    rebuild_id, exc,
                )  # fmt: skip
                skipped.add(rebuild_id)
        self._drop_leftover_roles()
        return dropped

    @staticmethod
    def _drop_kept_with_decision(rebuild_id: int, window_over: bool) -> bool:
        with transaction.atomic():
            rebuild = Rebuild.objects.get(pk=rebuild_id)
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('lock_timeout', %s, true)",
                               [CLEANUP_LOCK_TIMEOUT])  # fmt: skip
                cursor.execute(sql.KEPT_TABLES, {"schema": rebuild.kept_schema})
                tables = [name for (name,) in cursor.fetchall()]
                if tables:
                    cursor.execute(f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE")
                cursor.execute(sql.KEPT_STILL_THERE, {"id": rebuild_id})
                if cursor.fetchone() is None:  # dropped meanwhile (the swap's clearing)
                    return False
            drop_kept(rebuild)
            reason = (
                f"kept {options().rebuild_keep_hours:g} hours after the swap"
                if window_over
                else "a later swap of the projection left them (only the last swap rolls back)"
            )
            record_decision(
                "RebuildTablesDropped",
                projection=rebuild.projection_name,
                inputs={
                    "rebuild_id": rebuild.pk,
                    "kept_schema": rebuild.kept_schema,
                    "tables": [t["table"] for t in rebuild.tables],
                    "kept_until": rebuild.kept_until.isoformat() if rebuild.kept_until else None,
                },
                actor=None,
                reason=reason,
            )
        return True

    def _drop_leftover_roles(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql.LEFTOVER_ROLES)
            ids = [row[0] for row in cursor.fetchall()]
        for rebuild_id in ids:
            try:
                with transaction.atomic():
                    exempt_from_horizon()
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT set_config('lock_timeout', %s, true)",
                                       [CLEANUP_LOCK_TIMEOUT])  # fmt: skip
                    rebuild = (
                        Rebuild.objects.select_for_update(skip_locked=True)
                        .filter(pk=rebuild_id)
                        .first()
                    )
                    if rebuild is None:  # another worker's cleanup has it
                        continue
                    drop_rebuild_role(rebuild)
            except DatabaseError as exc:
                if is_connection_error(exc):
                    raise
                logger.warning("rebuild %s: its role could not be dropped now: %s",
                               rebuild_id, exc)  # fmt: skip
                continue
            logger.info("rebuild %s: dropped its role %s, left by its swap", rebuild_id,
                        rebuild.role_name)  # fmt: skip


def run_rebuilds_once(
    registry: SubscriberRegistry, owner: str = "once", max_steps: int = 100_000
) -> int:
    """Step the rebuilds of ``registry``'s projections until none has work (tests, cron);
    return the steps that did something."""
    runner = RebuildRunner(registry.projections, owner)
    steps = 0
    while steps < max_steps and runner.step():
        steps += 1
    runner.clean_up()
    return steps


def _discard_connection() -> None:
    try:
        connection.close()
    except Exception:  # a broken connection may fail to close; it is dropped either way
        connection.connection = None


__all__ = ["RebuildRunner", "run_rebuilds_once", "summary"]
