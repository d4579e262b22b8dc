"""Verify: compare the live and the new tables at the same position, and run the
projection's own ``verify()`` on the new ones.

The comparison runs in a read-only REPEATABLE READ snapshot, on a connection of its
own: it holds no transaction id and no lock that stops the live projection. To have
both bookmarks at one position in that snapshot while events keep arriving, the live
bookmark is held for a moment (the live projection passes over it, SKIP LOCKED) while
the rebuild applies the last few events and the snapshot is taken; then it is let go,
and the comparison takes as long as it takes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from django.apps import apps
from django.db import connection, models, transaction
from django.utils import timezone

import subscribers.rebuilds.sql as sql
from eventstore.sql import EXEMPT_FROM_HORIZON
from eventstore.types import Cursor
from subscribers.models import Rebuild
from subscribers.rebuilds.definition import qi
from subscribers.rebuilds.guard import routed
from subscribers.rebuilds.process import lower_backend_priority
from subscribers.registry import Registered

#: Sample rows kept of each kind (only in live, only in new, differing), per table.
SAMPLES = 20
#: The verification's line-up waits no longer than this for the live bookmark.
LINE_UP_LOCK_TIMEOUT = "100ms"


@dataclass(frozen=True)
class Key:
    """How rows of a table are matched: the columns, and the columns left out of the
    comparison (a surrogate primary key a replay may number differently)."""

    columns: list[str]
    ignored: list[str]
    natural: bool


def match_key(label: str) -> Key:
    """The primary key, or the model's unique natural key where the key is a surrogate."""
    model = apps.get_model(label)
    meta = model._meta
    pk = meta.pk
    assert pk is not None
    surrogate = isinstance(pk, models.AutoField | models.BigAutoField | models.SmallAutoField)
    if surrogate:
        for constraint in meta.constraints:
            if (
                isinstance(constraint, models.UniqueConstraint)
                and constraint.fields
                and constraint.condition is None
            ):
                cols = [meta.get_field(f).column for f in constraint.fields]
                return Key(cols, [pk.column], True)
        for fields in meta.unique_together:
            return Key([meta.get_field(f).column for f in fields], [pk.column], True)
        for field in meta.concrete_fields:
            if field.unique and not field.primary_key:
                return Key([field.column], [pk.column], True)
    return Key(
        [f.column for f in meta.pk_fields] if hasattr(meta, "pk_fields") else [pk.column], [], False
    )


def connection_params() -> dict[str, Any]:
    """Django's default database, for a psycopg connection of the engine's own."""
    params = dict(connection.get_connection_params())
    for django_only in ("cursor_factory", "context", "server_side_binding", "prepare_threshold"):
        params.pop(django_only, None)
    return params


@contextlib.contextmanager
def own_connection(*, autocommit: bool, purpose: str) -> Iterator[psycopg.Connection[Any]]:
    """A psycopg connection apart from Django's (closed on exit), named
    ``eventdesk-rebuild-<purpose>`` in ``pg_stat_activity``."""
    params = connection_params()
    params["application_name"] = f"eventdesk-rebuild-{purpose}"
    conn = psycopg.connect(**params, autocommit=autocommit)
    lower_backend_priority(conn)  # in a niced rebuild process: the backend too
    try:
        yield conn
    finally:
        conn.close()


_DIFF = """
WITH l AS (SELECT jsonb_build_array({key}) AS k, to_jsonb(t) - %(ignored)s::text[] AS r
           FROM {live} t),
     n AS (SELECT jsonb_build_array({key}) AS k, to_jsonb(t) - %(ignored)s::text[] AS r
           FROM {new} t),
     d AS (SELECT CASE WHEN n.k IS NULL THEN 'only_live' WHEN l.k IS NULL THEN 'only_new'
                       ELSE 'differing' END AS kind,
                  coalesce(l.k, n.k) AS k, l.r AS lr, n.r AS nr
           FROM l FULL JOIN n ON l.k = n.k
           WHERE l.r IS DISTINCT FROM n.r),
     ranked AS (SELECT kind, lr, nr, count(*) OVER (PARTITION BY kind) AS total,
                       row_number() OVER (PARTITION BY kind ORDER BY k) AS rn FROM d)
SELECT kind, total, lr, nr FROM ranked WHERE rn <= %(samples)s ORDER BY kind, rn
"""


def compare_table(cursor: psycopg.Cursor[Any], label: str, live: str, new: str) -> dict[str, Any]:
    """Rows only in ``live``, only in ``new``, and differing, with samples (one snapshot)."""
    key = match_key(label)
    cursor.execute(f"SELECT (SELECT count(*) FROM {live}), (SELECT count(*) FROM {new})")
    row = cursor.fetchone()
    assert row is not None
    found: dict[str, Any] = {
        "matched_by": key.columns,
        "natural_key": key.natural,
        "live_rows": int(row[0]),
        "new_rows": int(row[1]),
        "only_live": 0,
        "only_new": 0,
        "differing": 0,
        "samples": {"only_live": [], "only_new": [], "differing": []},
    }
    query = _DIFF.format(key=", ".join(f"t.{qi(c)}" for c in key.columns), live=live, new=new)
    cursor.execute(query, {"ignored": key.ignored, "samples": SAMPLES})
    for kind, total, lr, nr in cursor.fetchall():
        found[kind] = int(total)
        changed = sorted(
            c for c in set(lr or {}) | set(nr or {}) if (lr or {}).get(c) != (nr or {}).get(c)
        )
        found["samples"][kind].append({"live": lr, "new": nr, "changed": changed})
    return found


def line_up_and_compare(
    rebuild: Rebuild, entry: Registered, catch_up: Any
) -> dict[str, Any] | None:
    """Bring the rebuild to the live position with the live bookmark held for a moment,
    take the snapshot, let go, compare. None when the line-up did not happen this time
    (the live bookmark busy, or too far ahead): the caller catches up and tries again.

    ``catch_up(upto)`` applies the events up to ``upto`` in a transaction of its own and
    returns the rebuild's position after.
    """
    with (
        own_connection(autocommit=False, purpose="line-up") as holder,
        own_connection(autocommit=False, purpose="verify") as reader,
    ):
        with holder.cursor() as hold:
            # It locks the live bookmark and is rolled back: no reader need wait for it.
            for statement in EXEMPT_FROM_HORIZON:
                hold.execute(statement)
            hold.execute("SELECT set_config('lock_timeout', %s, true)", [LINE_UP_LOCK_TIMEOUT])
            try:
                hold.execute(sql.LOCK_LIVE, {"name": rebuild.projection_name})
            except psycopg.errors.LockNotAvailable:
                holder.rollback()
                return None
            row = hold.fetchone()
            assert row is not None
            live = Cursor(int(row[0]), int(row[1]))
            position = catch_up(live)
            if position != live:
                holder.rollback()
                return None
            read = reader.cursor()
            read.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            read.execute(
                "SELECT (SELECT ARRAY[last_transaction_id, last_position]"
                " FROM projection_bookmarks WHERE subscriber_name = %(name)s),"
                " (SELECT ARRAY[last_transaction_id, last_position]"
                " FROM projection_rebuilds WHERE id = %(id)s)",
                {"name": rebuild.projection_name, "id": rebuild.pk},
            )
            both = read.fetchone()
            holder.rollback()  # the live projection goes on; the snapshot stays
            # A worker that passed over the held bookmark waits for a wake-up: give one.
            holder.execute(sql.WAKE_WORKERS)
            holder.commit()
        assert both is not None
        if list(both[0]) != list(both[1]):
            return None
        tables = {
            t["table"]: compare_table(
                read,
                t["model"],
                f"{qi(t['schema'])}.{qi(t['table'])}",
                f"{qi(rebuild.schema)}.{qi(t['table'])}",
            )
            for t in rebuild.tables
        }
        reader.rollback()
    return {
        "position": [int(both[0][0]), int(both[0][1])],
        "tables": tables,
        "verified_at": timezone.now().isoformat(),
    }


def run_verify(rebuild: Rebuild, entry: Registered) -> list[str]:
    """The projection's own ``verify()`` on the new tables (read only); its problems."""
    check = getattr(entry.subscriber, "verify", None)
    if not callable(check):
        return []
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        with routed(rebuild):
            try:
                with transaction.atomic():
                    problems = check()
            except Exception as exc:
                problems = [f"verify() raised {type(exc).__name__}: {exc}"]
    return [str(p) for p in problems or []]
