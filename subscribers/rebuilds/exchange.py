"""The table exchange of a swap and of a roll back, once the rows and bookmarks are locked.

``ALTER TABLE ... SET SCHEMA`` moves a table with its indexes, constraints, owned
sequences, triggers and policies, and touches only the catalogs: the exchange takes
milliseconds whatever the size. Readers wait only for it (behind ACCESS EXCLUSIVE
locks taken under the caller's lock timeout) and then see the other tables, whole:
a reader that waited resolves the table name again once it gets its lock.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from django.db import DatabaseError, connection, transaction
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

import subscribers.rebuilds.errors as errors
import subscribers.rebuilds.sql as sql
from eventstore.horizon import exempt_from_horizon
from eventstore.types import Cursor
from subscribers.models import Rebuild
from subscribers.rebuilds.definition import Definition, describe, differences, qi
from subscribers.rebuilds.errors import RebuildRefused
from subscribers.rebuilds.replay import apply_upto
from subscribers.rebuilds.steps import (
    RollBackResult,
    SwapResult,
    definition_changes,
    drop_rebuild_role,
    keep_until,
)
from subscribers.registry import Registered

logger = logging.getLogger("eventdesk.rebuilds")

#: How long the clearing after a swap waits for a lock on the earlier kept tables (a
#: reader of them) before it leaves them to the worker's cleanup.
CLEAR_LOCK_TIMEOUT = "2s"

# The projection's bookmark after a swap or a roll back: at the position of the tables it
# now has, its failure state cleared (the tables changed under it); a pause is kept.
MOVE_LIVE = """
UPDATE projection_bookmarks
SET last_transaction_id = %(tx)s, last_position = %(pos)s,
    status = CASE WHEN status = 'paused' THEN 'paused' ELSE 'active' END,
    paused_from = CASE WHEN status = 'paused' THEN 'active' ELSE paused_from END,
    attempts = 0, failing_event_id = NULL, last_error = '', last_traceback = '',
    failed_at = NULL, next_retry_at = NULL, updated_at = now()
WHERE subscriber_name = %(name)s
"""


# The swap's first lock, and with it its xid: the open rebuild's row and the projection's
# bookmark in one statement (no bookmark: no row, and ``lock_for_swap`` says None), with
# whether any of the projection's events lie between the two (the swap applies them).
# That answer holds only for the rows as this statement's snapshot saw them: a row locked
# after a wait is its newest version, while ``seen`` (not flattened: OFFSET 0) keeps what
# it was computed from, so ``lock_for_swap`` can tell when the bookmark moved meanwhile.
LOCK_OPEN_AND_LIVE = """
SELECT r.id, r.xmin::text, r.last_transaction_id, r.last_position,
       b.last_transaction_id, b.last_position,
       seen.from_tx, seen.from_pos, seen.to_tx, seen.to_pos, seen.found
FROM projection_rebuilds r
JOIN projection_bookmarks b ON b.subscriber_name = r.projection_name
CROSS JOIN LATERAL (
    SELECT r.last_transaction_id AS from_tx, r.last_position AS from_pos,
           b.last_transaction_id AS to_tx, b.last_position AS to_pos,
           -- In the global order, so that it walks the index from the rebuild's bookmark.
           (SELECT true FROM events e
            WHERE (e.transaction_id, e.position)
                  > (r.last_transaction_id::text::xid8, r.last_position)
              AND (e.transaction_id, e.position)
                  <= (b.last_transaction_id::text::xid8, b.last_position)
              AND (%(types)s::text[] IS NULL OR e.event_type = ANY(%(types)s::text[]))
            ORDER BY e.transaction_id, e.position
            LIMIT 1) IS NOT NULL AS found
    OFFSET 0
) AS seen
WHERE r.projection_name = %(name)s AND r.phase = ANY(%(phases)s)
FOR UPDATE OF r, b
"""

# What a swap changes in its rebuild's row, sent with the exchange (see ``swap_locked``).
MARK_SWAPPED = """
UPDATE projection_rebuilds
SET phase = %(phase)s, last_transaction_id = %(tx)s, last_position = %(pos)s,
    swapped_transaction_id = %(tx)s, swapped_position = %(pos)s, swapped_at = %(now)s,
    ended_at = %(now)s, phase_changed_at = %(now)s, updated_at = %(now)s,
    swapped_definitions = %(definitions)s, kept_until = %(kept_until)s, note = '',
    lease_owner = '', lease_expires_at = NULL
WHERE id = %(id)s
"""


@dataclass(frozen=True)
class LockedForSwap:
    """What ``lock_for_swap`` locked and read."""

    rebuild: Rebuild
    #: Where the live projection stands (its bookmark, locked).
    live: Cursor
    #: Whether the last events must be read: some of the projection's lie between the
    #: rebuild's bookmark and ``live``, or the bookmark moved while the lock waited.
    events_pending: bool


def lock_for_swap(name: str, entry: Registered, read: Rebuild | None) -> LockedForSwap | None:
    """The open rebuild of ``name`` and where its live projection stands, both rows locked
    in one round trip; None when either is missing (the caller locks them one by one,
    which names what is missing). ``read`` is the rebuild as read before the lock, with
    its row version (``with_row_version``): when the row has not changed since, it is the
    rebuild returned, and no more is read while every reader waits."""
    types = None if entry.event_types is None else list(entry.event_types)
    phases = [str(p) for p in Rebuild.OPEN_PHASES]
    with connection.cursor() as cursor:
        cursor.execute(LOCK_OPEN_AND_LIVE, {"name": name, "phases": phases, "types": types})
        row = cursor.fetchone()
    if row is None:
        return None
    rebuild_id, version, from_tx, from_pos, live_tx, live_pos, *seen = row
    # Moved since the snapshot (a live batch committed while the lock waited): the events
    # it passed are read again, with a snapshot that sees them.
    moved = seen[:4] != [from_tx, from_pos, live_tx, live_pos]
    pending = bool(seen[4]) or moved
    if read is not None and read.pk == rebuild_id and getattr(read, ROW_VERSION, None) == version:
        rebuild = read
    else:  # changed since it was read (or another rebuild): read again, locked already
        rebuild = Rebuild.objects.get(pk=rebuild_id)
    return LockedForSwap(rebuild, Cursor(int(live_tx), int(live_pos)), pending)


#: The annotation that carries a rebuild row's version (its ``xmin``: every update of the
#: row, by the ORM or not, makes a new one).
ROW_VERSION = "row_version"


def with_row_version(rebuilds: QuerySet[Rebuild]) -> QuerySet[Rebuild]:
    """``rebuilds`` read with their row version (see ``lock_for_swap``)."""
    return rebuilds.annotate(**{ROW_VERSION: RawSQL("xmin::text", ())})


def _lock_live(name: str) -> Cursor:
    with connection.cursor() as cursor:
        cursor.execute(sql.LOCK_LIVE, {"name": name})
        row = cursor.fetchone()
    if row is None:
        raise RebuildRefused(errors.NO_REBUILD, f"{name} has no bookmark")
    return Cursor(int(row[0]), int(row[1]))


def _live_names(rebuild: Rebuild) -> list[str]:
    return [f"{qi(t['schema'])}.{qi(t['table'])}" for t in rebuild.tables]


@dataclass(frozen=True)
class SwapPlan:
    """What a swap checks and records of the tables, read from the catalogs before the
    swap takes a lock or an xid: its transaction, which every reader waits for, stays
    short. The tables' definitions change only by a migration (the live ones) or in the
    rebuild's early phases (the new ones), never in the few milliseconds between."""

    rebuild_id: int
    #: How the live tables differ from their definition when the rebuild started.
    changed: list[str]
    #: How the new tables differ from the live ones (row security aside: set at the swap).
    gaps: list[str]
    #: What the live tables will be: the new ones, with row security as live had it.
    swapped: dict[str, Definition]
    #: Whether the schema the live tables go to exists (made when the rebuild started).
    kept_schema_made: bool
    #: The kept schema of the earlier swap, which goes with this one (only the last swap
    #: can be rolled back); None when there is none.
    superseded_kept: str | None
    #: Whether the rebuild's role exists (its rights on the new tables are revoked at the
    #: exchange).
    role_exists: bool


def plan_swap(rebuild: Rebuild) -> SwapPlan:
    """Each table described once, live and new (read only: no lock, no xid)."""
    changed: list[str] = []
    gaps: list[str] = []
    swapped: dict[str, Definition] = {}
    with connection.cursor() as cursor:
        for t in rebuild.tables:
            table = str(t["table"])
            live = describe(cursor, t["schema"], table, t["schema"])
            new = describe(cursor, rebuild.schema, table, t["schema"])
            changed += differences(table, rebuild.definitions.get(table, {}), live)
            gaps += differences(table, live, new)
            swapped[table] = {**new, "row_security": rebuild.definitions[table]["row_security"]}
        cursor.execute(
            "SELECT to_regnamespace(%s) IS NOT NULL,"
            " EXISTS (SELECT FROM pg_roles WHERE rolname = %s)",
            [rebuild.kept_schema, rebuild.role_name],
        )
        kept_schema_made, role_exists = cursor.fetchone()
    superseded = _superseded(rebuild).values_list("kept_schema", flat=True).first()
    return SwapPlan(
        rebuild.pk, changed, gaps, swapped, bool(kept_schema_made), superseded, bool(role_exists)
    )


def swap_locked(
    rebuild: Rebuild,
    entry: Registered,
    plan: SwapPlan | None = None,
    locked: LockedForSwap | None = None,
) -> SwapResult:
    """The swap, the rebuild row locked and ready (see ``steps.swap_rebuild``); ``plan``
    read before the lock (read again here when it is of another rebuild); ``locked``
    when the caller locked the bookmark with the row (``lock_for_swap``)."""
    name = rebuild.projection_name
    if plan is None or plan.rebuild_id != rebuild.pk:
        plan = plan_swap(rebuild)
    if plan.changed:
        raise RebuildRefused(
            errors.TABLE_DEFINITION_CHANGED,
            "a migration changed the live tables during the rebuild ("
            + "; ".join(plan.changed)[:1500]
            + "): the new tables do not have it; cancel and start the rebuild again",
        )
    if plan.gaps:
        raise RebuildRefused(
            errors.REBUILD_NOT_READY,
            "the new tables do not match the live definition yet: " + "; ".join(plan.gaps)[:1500],
        )
    # The transaction holds an xid from the rebuild's lock to its commit, and no reader sees
    # an event committed meanwhile: only what must land with the decision happens in it.
    # The earlier swap's kept tables and the rebuild's role go after the commit
    # (``clear_after_swap``), in a transaction no reader waits for.
    if not plan.kept_schema_made:  # a rebuild started before the schema came at its start
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE SCHEMA {qi(rebuild.kept_schema)}")
    live = locked.live if locked is not None else _lock_live(name)
    if locked is not None and not locked.events_pending:  # none of its events came since
        applied, position = 0, max(live, rebuild.cursor)
    else:
        applied, position = apply_upto(rebuild, entry, live)
    if position != live:
        raise RebuildRefused(
            errors.REBUILD_NOT_READY,
            f"the new tables could not be brought to the live position {tuple(live)}",
        )
    now = timezone.now()
    rebuild.phase = Rebuild.Phase.SWAPPED
    rebuild.last_transaction_id, rebuild.last_position = live
    rebuild.swapped_transaction_id, rebuild.swapped_position = live
    rebuild.swapped_at = rebuild.ended_at = rebuild.phase_changed_at = rebuild.updated_at = now
    rebuild.swapped_definitions = plan.swapped
    rebuild.kept_until = keep_until()
    rebuild.note, rebuild.lease_owner, rebuild.lease_expires_at = "", "", None
    new_names = [f"{qi(rebuild.schema)}.{qi(t['table'])}" for t in rebuild.tables]
    # One round trip from the lock request to the rebuild's row marked swapped: statements
    # without parameters go in one simple query, run in order in this transaction (the
    # first error, a lock timeout say, stops them and fails it). Every reader of events
    # waits for this transaction, so each round trip saved is a wait saved.
    statements = [
        # Readers queue behind this request for at most the lock timeout (100 ms).
        f"LOCK TABLE {', '.join(_live_names(rebuild) + new_names)} IN ACCESS EXCLUSIVE MODE",
        *_exchange_statements(rebuild, revoke=plan.role_exists),
        _bound(MOVE_LIVE, {"name": name, "tx": live[0], "pos": live[1]}),
        _bound(MARK_SWAPPED, _swapped_values(rebuild, live, now)),
    ]
    with connection.cursor() as cursor, _no_statement_preparing():
        requested = time.perf_counter()
        cursor.execute(";\n".join(statements))
        held_ms = (time.perf_counter() - requested) * 1000
    transaction.on_commit(functools.partial(clear_after_swap, rebuild.pk))
    return SwapResult(rebuild, live, applied, rebuild.verification, plan.superseded_kept, held_ms)


def _bound(query: str, params: dict[str, Any]) -> str:
    """``query`` with its parameters bound as literals, by psycopg (what Django's
    ``compose_sql`` does): it can go in one simple query with the exchange."""
    with psycopg.ClientCursor(connection.connection) as cursor:
        return str(cursor.mogrify(query, params))


@contextlib.contextmanager
def _no_statement_preparing() -> Iterator[None]:
    """psycopg forgets every statement it prepared in the session when a statement it may
    prepare reports an ALTER or a DROP, with one more round trip (``DEALLOCATE ALL``)
    before the next statement: the decision's append, in the window every reader waits
    for. The exchange, never prepared, goes without that: PostgreSQL plans a prepared
    statement again itself when a table it uses changes (or the ``search_path``), and the
    exchange drops no type a statement's parameters could use."""
    raw = connection.connection
    threshold = raw.prepare_threshold
    raw.prepare_threshold = None
    try:
        yield
    finally:
        raw.prepare_threshold = threshold


def _swapped_values(rebuild: Rebuild, live: Cursor, now: datetime) -> dict[str, Any]:
    """``MARK_SWAPPED``'s parameters: the row as ``swap_locked`` left the instance."""
    definitions = Rebuild._meta.get_field("swapped_definitions")
    return {
        "id": rebuild.pk,
        "phase": str(rebuild.phase),
        "tx": live[0],
        "pos": live[1],
        "now": now,
        "definitions": definitions.get_db_prep_value(rebuild.swapped_definitions, connection),
        "kept_until": rebuild.kept_until,
    }


def _exchange_statements(rebuild: Rebuild, *, revoke: bool) -> list[str]:
    """The live tables to the kept schema, the new ones to the live names (with row
    security as the live ones had it), the rebuild's schema (empty then) dropped, the
    workers woken."""
    role, schema = qi(rebuild.role_name), qi(rebuild.schema)
    # The rebuild's role (dropped after the commit) keeps no right on the tables going live.
    statements = (
        [
            f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {role}",
            f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {role}",
        ]
        if revoke
        else []
    )
    for t in rebuild.tables:
        target = f"{qi(t['schema'])}.{qi(t['table'])}"
        statements += [
            f"ALTER TABLE {target} SET SCHEMA {qi(rebuild.kept_schema)}",
            f"ALTER TABLE {qi(rebuild.schema)}.{qi(t['table'])} SET SCHEMA {qi(t['schema'])}",
        ]
        enable, force = rebuild.definitions[t["table"]]["row_security"]
        if enable:
            statements.append(f"ALTER TABLE {target} ENABLE ROW LEVEL SECURITY")
        if force:
            statements.append(f"ALTER TABLE {target} FORCE ROW LEVEL SECURITY")
    statements.append(f"DROP SCHEMA {qi(rebuild.schema)}")
    # Heard at commit: a live batch that passed over the locked bookmark goes again.
    statements.append(sql.WAKE_WORKERS)
    return statements


def _superseded(rebuild: Rebuild) -> QuerySet[Rebuild]:
    """The earlier swaps of ``rebuild``'s projection whose kept tables are still there."""
    return Rebuild.objects.filter(
        projection_name=rebuild.projection_name,
        phase=Rebuild.Phase.SWAPPED,
        kept_dropped_at__isnull=True,
    ).exclude(pk=rebuild.pk)


def clear_after_swap(rebuild_id: int) -> list[str]:
    """After a swap's commit: the earlier swaps' kept tables and the rebuild's role go, in
    a transaction of their own that no reader waits for (it appends nothing); the kept
    schemas dropped.

    A failure (a reader holding the old tables past the lock timeout, a lost connection)
    is logged and changes nothing: the worker's cleanup (``RebuildRunner.clean_up``) drops
    what is left."""
    try:
        with transaction.atomic():
            exempt_from_horizon()
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [CLEAR_LOCK_TIMEOUT])
            rebuild = Rebuild.objects.get(pk=rebuild_id)
            dropped = [drop_kept(older) for older in _superseded(rebuild).select_for_update()]
            drop_rebuild_role(rebuild)
    except Exception as exc:  # the swap has committed: its act must not fail now
        logger.warning(
            "rebuild %s: swapped in; the earlier kept tables and its role are left for the"
            " worker's cleanup: %s", rebuild_id, exc, exc_info=not isinstance(exc, DatabaseError),
        )  # fmt: skip
        return []
    return dropped


def drop_kept(rebuild: Rebuild) -> str:
    """Drop ``rebuild``'s kept tables (locked by the caller) and say so in its row."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA IF EXISTS {qi(rebuild.kept_schema)} CASCADE")
    rebuild.kept_dropped_at = rebuild.updated_at = timezone.now()
    rebuild.save(update_fields=["kept_dropped_at", "updated_at"])
    return rebuild.kept_schema


def roll_back_locked(rebuild: Rebuild) -> RollBackResult:
    """The roll back, the swapped rebuild row locked (see ``steps.roll_back_rebuild``)."""
    name = rebuild.projection_name
    before = _lock_live(name)
    changed = definition_changes(rebuild, rebuild.swapped_definitions or {})
    if changed:
        raise RebuildRefused(
            errors.TABLE_DEFINITION_CHANGED,
            "a migration changed the live tables since the swap ("
            + "; ".join(changed)[:1500]
            + "): the kept tables never received it, so they cannot come back",
        )
    assert rebuild.swapped_transaction_id is not None
    assert rebuild.swapped_position is not None
    after = Cursor(rebuild.swapped_transaction_id, rebuild.swapped_position)
    with connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {', '.join(_live_names(rebuild))} IN ACCESS EXCLUSIVE MODE")
        cursor.execute(f"DROP TABLE {', '.join(_live_names(rebuild))}")
        for t in rebuild.tables:
            cursor.execute(
                f"ALTER TABLE {qi(rebuild.kept_schema)}.{qi(t['table'])}"
                f" SET SCHEMA {qi(t['schema'])}"
            )
        cursor.execute(f"DROP SCHEMA {qi(rebuild.kept_schema)}")
        cursor.execute(MOVE_LIVE, {"name": name, "tx": after[0], "pos": after[1]})
        cursor.execute(sql.WAKE_WORKERS)
    now = timezone.now()
    rebuild.phase = Rebuild.Phase.ROLLED_BACK
    rebuild.kept_dropped_at = rebuild.phase_changed_at = rebuild.updated_at = now
    rebuild.save()
    return RollBackResult(rebuild, before, after)
