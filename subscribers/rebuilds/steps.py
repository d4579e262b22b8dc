"""The inner steps of the rebuild acts: start, swap, roll back, cancel, pause, resume,
retry. Each runs in the caller's open transaction, locks what it needs, and either makes
its change or raises ``RebuildRefused`` (the caller's transaction then rolls back)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

import subscribers.rebuilds.errors as errors
import subscribers.rebuilds.sql as sql
from config.options import options
from eventstore.types import Cursor
from subscribers.bookmarks import ensure_bookmarks
from subscribers.models import Rebuild
from subscribers.rebuilds.declared import declared_tables, rebuildable
from subscribers.rebuilds.definition import Definition, describe, differences, qi
from subscribers.rebuilds.errors import RebuildRefused
from subscribers.registry import Registered, SubscriberRegistry, configured_registry

#: Readers queue behind a lock request for as long as it waits: the swap waits no longer.
SWAP_LOCK_TIMEOUT = "100ms"
#: Cancel and pause may wait a little longer for a worker's batch to end.
STEP_LOCK_TIMEOUT = "2s"

T = TypeVar("T")


@dataclass(frozen=True)
class SwapResult:
    """What a swap did (the act puts it in its decision)."""

    rebuild: Rebuild
    #: Where both bookmarks stand now.
    position: Cursor
    #: Events applied to the new tables inside the swap.
    events_applied: int
    #: The verification summary the swap went on.
    verification: dict[str, Any] | None
    #: Kept tables of an earlier swap, dropped to make room.
    dropped_kept_schema: str | None = None
    #: From this step's request for the tables' locks to the end of the exchange (readers
    #: wait for it, and for the commit).
    tables_locked_ms: float = 0.0

    def as_inputs(self) -> dict[str, Any]:
        """The decision's inputs."""
        return {
            "rebuild_id": self.rebuild.pk,
            "position": list(self.position),
            "events_applied": self.events_applied,
            "verification": summary(self.verification),
            "kept_schema": self.rebuild.kept_schema,
            "kept_until": self.rebuild.kept_until.isoformat() if self.rebuild.kept_until else None,
            "dropped_kept_schema": self.dropped_kept_schema,
            "tables_locked_ms": round(self.tables_locked_ms, 1),
        }


@dataclass(frozen=True)
class RollBackResult:
    """What a roll back did: the bookmark went back to the kept tables' position."""

    rebuild: Rebuild
    position_before: Cursor
    position_after: Cursor

    def as_inputs(self) -> dict[str, Any]:
        return {
            "rebuild_id": self.rebuild.pk,
            "position_before": list(self.position_before),
            "position_after": list(self.position_after),
        }


@dataclass(frozen=True)
class CancelResult:
    """What a cancel did: the rebuild's tables are gone."""

    rebuild: Rebuild
    phase_before: str
    dropped: list[str] = field(default_factory=list)

    def as_inputs(self) -> dict[str, Any]:
        return {
            "rebuild_id": self.rebuild.pk,
            "phase_before": self.phase_before,
            "events_done": self.rebuild.events_done,
            "dropped_tables": self.dropped,
        }


def summary(verification: dict[str, Any] | None) -> dict[str, Any] | None:
    """The verification without its samples: counts per table, and the problems."""
    if verification is None:
        return None
    return {
        "position": verification.get("position"),
        "problems": verification.get("problems", []),
        "tables": {
            table: {k: v for k, v in found.items() if k != "samples"}
            for table, found in verification.get("tables", {}).items()
        },
    }


# --- reads --------------------------------------------------------------------------------


def current_rebuild(name: str) -> Rebuild | None:
    """The projection's latest rebuild (open or ended), or None."""
    return Rebuild.objects.filter(projection_name=name).order_by("-created_at", "-id").first()


def _entry(name: str, registry: SubscriberRegistry | None) -> Registered:
    registry = registry if registry is not None else configured_registry()
    entry = registry.get(name) if registry is not None else None
    if entry is None:
        raise RebuildRefused(errors.SUBSCRIBER_NOT_FOUND, f"No subscriber named {name!r}.")
    if entry.kind != "projection":
        raise RebuildRefused(
            errors.REACTION_CANNOT_BE_REBUILT,
            f"{name} is a reaction: its effects (mails, LLM calls, appends) already happened,"
            " and a rebuild would repeat them.",
        )
    return entry


def _in_transaction() -> None:
    if not connection.in_atomic_block:
        raise RuntimeError("A rebuild step runs inside the act's transaction.atomic().")


def _set_lock_timeout(value: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [value])


def _lock_open(name: str) -> Rebuild:
    """The projection's open rebuild, locked (``no_rebuild`` when there is none)."""
    try:
        found = (
            Rebuild.objects.select_for_update()
            .filter(projection_name=name, phase__in=Rebuild.OPEN_PHASES)
            .first()
        )
    except OperationalError as exc:
        raise _busy(name, exc) from exc
    if found is None:
        raise RebuildRefused(errors.NO_REBUILD, f"{name} has no rebuild in progress.")
    return found


def _busy(name: str, exc: BaseException) -> RebuildRefused:
    if getattr(exc.__cause__, "sqlstate", None) == "55P03" or "lock timeout" in str(exc):
        return RebuildRefused(
            errors.REBUILD_LOCKS_BUSY,
            f"the locks of {name}'s tables or bookmarks were not free within the lock timeout"
            " (a long reader, or a batch in flight); nothing changed",
        )
    raise exc


# --- start ------------------------------------------------------------------------------


def start_rebuild(
    name: str,
    *,
    reason: str,
    started_by: AbstractBaseUser | None,
    swap_when_verified: bool = False,
    registry: SubscriberRegistry | None = None,
) -> Rebuild:
    """Record a new rebuild of projection ``name`` (phase *copying schema*); a worker
    configured with the projection takes it from there.

    Refuses ``subscriber_not_found``, ``reaction_cannot_be_rebuilt``,
    ``projection_not_rebuildable`` (saying what is missing or in the way) and
    ``rebuild_in_progress`` (one rebuild per projection at a time: of two starts at
    once, one wins).
    """
    _in_transaction()
    entry = _entry(name, registry)
    problems = rebuildable(entry)
    if problems:
        raise RebuildRefused(errors.PROJECTION_NOT_REBUILDABLE, "; ".join(problems))
    tables = declared_tables(entry)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t, n.nspname FROM unnest(%(tables)s::text[]) AS t"
            " JOIN pg_class c ON c.oid = to_regclass(quote_ident(t))"
            " JOIN pg_namespace n ON n.oid = c.relnamespace",
            {"tables": [t.table for t in tables]},
        )
        schemas = dict(cursor.fetchall())
        cursor.execute("SELECT oid FROM pg_database WHERE datname = current_database()")
        database_oid = int(cursor.fetchone()[0])
    if len(set(schemas.values())) > 1:
        raise RebuildRefused(
            errors.PROJECTION_NOT_REBUILDABLE,
            f"its tables lie in several schemas ({', '.join(sorted(set(schemas.values())))})",
        )
    _refuse_open(name)
    ensure_bookmarks([entry])  # the live position the rebuild follows, even before a worker ran
    try:
        with transaction.atomic():
            rebuild = Rebuild.objects.create(
                projection_name=name,
                reason=reason,
                started_by=started_by.get_username() if started_by is not None else "",
                started_by_id=started_by.pk if started_by is not None else None,
                swap_when_verified=swap_when_verified,
                tables=[
                    {"model": t.label, "table": t.table, "schema": schemas[t.table]} for t in tables
                ],
            )
    except IntegrityError:
        _refuse_open(name)
        raise
    rebuild.schema = f"eventdesk_rebuild_{rebuild.pk}"
    rebuild.kept_schema = f"eventdesk_kept_{rebuild.pk}"
    rebuild.role_name = f"eventdesk_rebuild_{database_oid}_{rebuild.pk}"
    rebuild.save(update_fields=["schema", "kept_schema", "role_name"])
    return rebuild


def _refuse_open(name: str) -> None:
    found = Rebuild.objects.filter(projection_name=name, phase__in=Rebuild.OPEN_PHASES).first()
    if found is not None:
        raise RebuildRefused(
            errors.REBUILD_IN_PROGRESS,
            f"{name} already has a rebuild ({found.get_phase_display()}, started"
            f" {found.created_at:%Y-%m-%d %H:%M} UTC by {found.started_by or 'the system'}):"
            " swap it or cancel it first.",
        )


# --- swap -------------------------------------------------------------------------------


def swap_rebuild(name: str, *, registry: SubscriberRegistry | None = None) -> SwapResult:
    """Swap the verified rebuild of ``name`` in, in the caller's (short) transaction.

    Locks the rebuild and both bookmarks, applies the last events to the new tables so
    both stand at the live position, exchanges the tables (the live ones move to the kept
    schema, the new ones take their names) and moves the projection's bookmark there.
    Every lock is taken under a lock timeout of 100 ms; ``rebuild_locks_busy`` when one is
    not free (``with_lock_retries`` tries again). Also refuses ``no_rebuild``,
    ``rebuild_failed``, ``rebuild_not_ready`` and ``table_definition_changed``.
    """
    from subscribers.rebuilds.exchange import (
        lock_for_swap,
        plan_swap,
        swap_locked,
        with_row_version,
    )

    _in_transaction()
    entry = _entry(name, registry)
    _set_lock_timeout(SWAP_LOCK_TIMEOUT)
    # The catalogs read first, while the transaction has no xid yet: every reader waits
    # for the rest of it (it appends the decision).
    ready = with_row_version(
        Rebuild.objects.filter(projection_name=name, phase=Rebuild.Phase.READY)
    ).first()
    plan = plan_swap(ready) if ready is not None else None
    try:
        locked = lock_for_swap(name, entry, ready)
    except OperationalError as exc:
        raise _busy(name, exc) from exc
    rebuild = locked.rebuild if locked is not None else _lock_open(name)
    if rebuild.phase == Rebuild.Phase.FAILED:
        raise RebuildRefused(
            errors.REBUILD_FAILED,
            f"the rebuild of {name} failed ({rebuild.last_error[:300]}): cancel it or retry it",
        )
    if rebuild.phase != Rebuild.Phase.READY:
        raise RebuildRefused(
            errors.REBUILD_NOT_READY,
            f"the rebuild of {name} is {rebuild.get_phase_display()}, not verified yet",
        )
    problems = (rebuild.verification or {}).get("problems") or []
    if problems:
        raise RebuildRefused(
            errors.REBUILD_NOT_READY,
            f"verify() found problems in the new tables: {'; '.join(problems)[:1000]}",
        )
    try:
        return swap_locked(rebuild, entry, plan, locked)
    except OperationalError as exc:
        raise _busy(name, exc) from exc


def definition_changes(rebuild: Rebuild, recorded: dict[str, Definition]) -> list[str]:
    """How the live tables differ from ``recorded`` (a migration ran meanwhile)."""
    found: list[str] = []
    with connection.cursor() as cursor:
        for t in rebuild.tables:
            now = describe(cursor, t["schema"], t["table"], t["schema"])
            found += differences(t["table"], recorded.get(t["table"], {}), now)
    return found


# --- roll back ----------------------------------------------------------------------------


def roll_back_rebuild(name: str) -> RollBackResult:
    """Swap the kept tables of the last swap of ``name`` back in; the projection's bookmark
    goes back to their position and the live projection catches up from there (the old
    *data* comes back, not the old code).

    Refuses ``nothing_to_roll_back`` (no swap, or its kept tables are gone),
    ``rebuild_in_progress`` (a newer rebuild is open), ``table_definition_changed`` (a
    migration changed the live tables since the swap: the kept ones never got it) and
    ``rebuild_locks_busy``.
    """
    from subscribers.rebuilds.exchange import roll_back_locked

    _in_transaction()
    _set_lock_timeout(SWAP_LOCK_TIMEOUT)
    try:
        rebuild = (
            Rebuild.objects.select_for_update()
            .filter(projection_name=name)
            .order_by("-created_at", "-id")
            .first()
        )
    except OperationalError as exc:
        raise _busy(name, exc) from exc
    if rebuild is not None and rebuild.is_open:
        raise RebuildRefused(
            errors.REBUILD_IN_PROGRESS,
            f"{name} has a rebuild in progress: cancel it before rolling back the last swap",
        )
    if rebuild is None or rebuild.phase != Rebuild.Phase.SWAPPED or rebuild.kept_dropped_at:
        raise RebuildRefused(
            errors.NOTHING_TO_ROLL_BACK,
            f"{name} has no swapped rebuild whose previous tables are still kept",
        )
    try:
        return roll_back_locked(rebuild)
    except OperationalError as exc:
        raise _busy(name, exc) from exc


# --- cancel, pause, resume, retry ---------------------------------------------------------


def cancel_rebuild(name: str) -> CancelResult:
    """Drop the open rebuild of ``name`` and its tables (``no_rebuild`` when none)."""
    rebuild = _lock_to_step(name, failed_ok=True)
    before = rebuild.phase
    dropped = [f"{rebuild.schema}.{t['table']}" for t in rebuild.tables]
    try:
        drop_rebuild_objects(rebuild)
    except OperationalError as exc:
        raise _busy(name, exc) from exc
    _end(rebuild, Rebuild.Phase.CANCELLED)
    return CancelResult(rebuild, before, dropped)


def drop_rebuild_objects(rebuild: Rebuild) -> None:
    """Drop the schemas of a rebuild that did not swap (its new tables, and the empty one
    its swap would have moved the live tables to) and its role, if they exist."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA IF EXISTS {qi(rebuild.schema)} CASCADE")
        if rebuild.kept_schema:
            cursor.execute(f"DROP SCHEMA IF EXISTS {qi(rebuild.kept_schema)}")
    drop_rebuild_role(rebuild)


def drop_rebuild_role(rebuild: Rebuild) -> None:
    """Drop the rebuild's role and the rights it was given, if it exists."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [rebuild.role_name])
        if cursor.fetchone():
            cursor.execute(f"DROP OWNED BY {qi(rebuild.role_name)}")
            cursor.execute(f"DROP ROLE {qi(rebuild.role_name)}")


def _end(rebuild: Rebuild, phase: str) -> None:
    rebuild.phase = phase
    rebuild.ended_at = rebuild.phase_changed_at = rebuild.updated_at = timezone.now()
    rebuild.lease_owner, rebuild.lease_expires_at, rebuild.next_retry_at = "", None, None
    rebuild.save()


def _lock_to_step(name: str, *, failed_ok: bool = False) -> Rebuild:
    """The open rebuild of ``name``, locked for an operator's step (``rebuild_failed``
    when it failed, unless the step is the one for a failed rebuild)."""
    _in_transaction()
    _set_lock_timeout(STEP_LOCK_TIMEOUT)
    rebuild = _lock_open(name)
    if rebuild.phase == Rebuild.Phase.FAILED and not failed_ok:
        raise RebuildRefused(errors.REBUILD_FAILED, f"the rebuild of {name} failed: retry it")
    return rebuild


def _go_on(rebuild: Rebuild) -> None:
    """Back to the phase it was stopped in (paused, or failed)."""
    rebuild.phase, rebuild.resume_phase = rebuild.resume_phase or "building", ""
    rebuild.phase_changed_at = rebuild.updated_at = timezone.now()


def pause_rebuild(name: str) -> Rebuild:
    """Pause the open rebuild of ``name``: no worker runs it until resumed."""
    rebuild = _lock_to_step(name)
    if rebuild.phase != Rebuild.Phase.PAUSED:
        rebuild.resume_phase, rebuild.phase = rebuild.phase, Rebuild.Phase.PAUSED
        rebuild.phase_changed_at = rebuild.updated_at = timezone.now()
        rebuild.lease_owner, rebuild.lease_expires_at = "", None
        rebuild.save()
    return rebuild


def resume_rebuild(name: str) -> Rebuild:
    """Resume the paused rebuild of ``name`` where it stood."""
    rebuild = _lock_to_step(name)
    if rebuild.phase == Rebuild.Phase.PAUSED:
        _go_on(rebuild)
        rebuild.save()
    return rebuild


def retry_rebuild(name: str) -> Rebuild:
    """Run a failed rebuild of ``name`` again from where it stood (attempts start over)."""
    rebuild = _lock_to_step(name, failed_ok=True)
    if rebuild.phase != Rebuild.Phase.FAILED:
        raise RebuildRefused(errors.NO_REBUILD, f"the rebuild of {name} has not failed")
    _go_on(rebuild)
    rebuild.attempts, rebuild.next_retry_at = 0, None
    rebuild.save()
    return rebuild


# --- the swap's retries -------------------------------------------------------------------


def with_lock_retries(
    body: Callable[[], T],
    *,
    name: str,
    tries: int = 30,
    pause_seconds: float = 0.2,
    say_after: int = 3,
) -> T:
    """Run ``body`` (a whole act: its own ``transaction.atomic(durable=True)`` around an
    inner step) until it does not refuse ``rebuild_locks_busy``, up to ``tries`` times.

    Each try waits at most the lock timeout, so readers queue behind it no longer than
    that; after ``say_after`` tries the rebuild's note says what the swap waits for.
    """
    for attempt in range(1, tries + 1):
        try:
            result = body()
        except RebuildRefused as refused:
            if refused.code != errors.REBUILD_LOCKS_BUSY or attempt == tries:
                raise
            if attempt >= say_after:
                _note_waiting(name, attempt)
            time.sleep(min(pause_seconds * attempt, 2.0))
            continue
        if attempt > 1:
            Rebuild.objects.filter(projection_name=name, note__startswith="waiting").update(note="")
        return result
    raise AssertionError("unreachable")


def _note_waiting(name: str, attempt: int) -> None:
    rebuild = current_rebuild(name)
    if rebuild is None:
        return
    tables = [f"{qi(t['schema'])}.{qi(t['table'])}" for t in rebuild.tables]
    with connection.cursor() as cursor:
        cursor.execute(sql.LOCK_HOLDERS, {"tables": tables})
        holders = [f"pid {pid} ({age or 0:.0f}s: {query})" for pid, query, age in cursor.fetchall()]
    who = "; held by " + ", ".join(holders) if holders else ""
    Rebuild.objects.filter(pk=rebuild.pk).update(
        note=f"waiting for the tables' locks: {attempt} tries so far{who}",
        updated_at=timezone.now(),
    )


def keep_until() -> Any:
    """When the tables a swap moves aside are dropped."""
    return timezone.now() + timedelta(hours=options().rebuild_keep_hours)
