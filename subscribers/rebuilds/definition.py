"""A table's exact definition, read from the catalogs, and a clone of it made elsewhere.

``CREATE TABLE ... (LIKE ... INCLUDING ALL)`` renames primary keys, unique constraints
and indexes, and Django's later migrations refer to those by name. So the clone takes
the columns from ``LIKE`` (defaults, identity, generated columns, CHECK and NOT NULL
constraints) and then every constraint, index, trigger and policy by its own name,
from its own definition, plus the owner, the grants and the storage options.

Definitions are read with ``search_path`` set to the table's schema and then the live
one, so the same table in the live schema and in a rebuild's schema reads the same:
that is how the clone is checked, and how a migration run during a rebuild is caught.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import transaction
from django.db.backends.utils import CursorWrapper

Definition = dict[str, Any]


def qi(name: str) -> str:
    """A quoted identifier."""
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def local_setting(cursor: CursorWrapper, name: str, value: str) -> Iterator[None]:
    """Set a setting for this transaction, and put the previous value back after."""
    cursor.execute("SELECT current_setting(%s), set_config(%s, %s, true)", [name, name, value])
    before = cursor.fetchone()[0]
    try:
        yield
    finally:
        cursor.execute("SELECT set_config(%s, %s, true)", [name, before])


def _path(schema: str, live_schema: str) -> str:
    return ", ".join(qi(s) for s in dict.fromkeys((schema, live_schema, "pg_catalog")))


_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
       CASE WHEN a.attcollation <> t.typcollation THEN co.collname END,
       pg_get_serial_sequence(quote_ident(%(schema)s) || '.' || quote_ident(%(table)s),
                              a.attname)
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_collation co ON co.oid = a.attcollation
WHERE a.attrelid = %(oid)s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""
_CONSTRAINTS = """
SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint
WHERE conrelid = %(oid)s ORDER BY conname
"""
_INDEXES = """
SELECT ci.relname, pg_get_indexdef(i.indexrelid),
       EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid
               AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u', 'x')),
       i.indisunique, i.indisvalid
FROM pg_index i JOIN pg_class ci ON ci.oid = i.indexrelid
WHERE i.indrelid = %(oid)s ORDER BY ci.relname
"""
_TRIGGERS = """
SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger
WHERE tgrelid = %(oid)s AND NOT tgisinternal ORDER BY tgname
"""
_POLICIES = """
SELECT polname, polpermissive, polcmd,
       ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r) END
             FROM unnest(polroles) AS r ORDER BY 1),
       pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid)
FROM pg_policy WHERE polrelid = %(oid)s ORDER BY polname
"""
_TABLE = """
SELECT c.oid, pg_get_userbyid(c.relowner), c.relrowsecurity, c.relforcerowsecurity,
       coalesce(c.reloptions, '{}'), c.relpersistence,
       ARRAY(SELECT CASE WHEN a.grantee = 0 THEN 'public' ELSE pg_get_userbyid(a.grantee) END
                    || ':' || a.privilege_type || CASE WHEN a.is_grantable THEN '*' ELSE '' END
             FROM aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) AS a
             WHERE NOT pg_get_userbyid(a.grantee) LIKE 'eventdesk_rebuild_%%'
             ORDER BY 1)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relname = %(table)s AND c.relkind IN ('r', 'p')
"""


def describe(cursor: CursorWrapper, schema: str, table: str, live_schema: str) -> Definition:
    """The definition of ``schema.table`` (empty when there is no such table)."""
    # A savepoint at least: a setting local to no transaction would not hold.
    with transaction.atomic(), local_setting(cursor, "search_path", _path(schema, live_schema)):
        cursor.execute(_TABLE, {"schema": schema, "table": table})
        row = cursor.fetchone()
        if row is None:
            return {}
        oid = row[0]
        names = {"schema": schema, "table": table, "oid": oid}
        cursor.execute(_COLUMNS, names)
        columns = [
            {
                "name": r[0],
                "type": r[1],
                "not_null": r[2],
                "default": r[3],
                "identity": r[4],
                "generated": r[5],
                "collation": r[6],
                "sequence": r[7].rpartition(".")[2] if r[7] else None,
            }
            for r in cursor.fetchall()
        ]
        cursor.execute(_CONSTRAINTS, names)
        constraints = {r[0]: [r[1], r[2]] for r in cursor.fetchall()}
        cursor.execute(_INDEXES, names)
        # pg_get_indexdef names the table with its schema, whatever the search_path.
        qualified = re.compile(r" ON (ONLY )?(?:" + re.escape(qi(schema)) + "|"
                               + re.escape(schema) + r")\.")  # fmt: skip
        indexes = {
            r[0]: {
                "definition": qualified.sub(lambda m: f" ON {m.group(1) or ''}", r[1], count=1),
                "constraint": r[2],
                "unique": r[3],
                "valid": r[4],
            }
            for r in cursor.fetchall()
        }
        cursor.execute(_TRIGGERS, names)
        triggers = {
            name: qualified.sub(lambda m: f" ON {m.group(1) or ''}", text, count=1)
            for name, text in cursor.fetchall()
        }
        cursor.execute(_POLICIES, names)
        policies = {r[0]: list(r[1:]) for r in cursor.fetchall()}
    return {
        "columns": columns,
        "constraints": constraints,
        "indexes": indexes,
        "triggers": triggers,
        "policies": policies,
        "owner": row[1],
        "row_security": [row[2], row[3]],
        "options": sorted(row[4]),
        "logged": row[5] == "p",
        "grants": list(row[6]),
    }


_KINDS = {
    "constraints": "constraint",
    "indexes": "index",
    "triggers": "trigger",
    "policies": "policy",
}


def differences(table: str, before: Definition, after: Definition) -> list[str]:
    """What differs between two definitions of ``table``, in words."""
    if not after:
        return [f"table {table} is gone"]
    if not before:
        return [f"table {table} is new"]
    found: list[str] = []
    old_cols = {c["name"]: c for c in before["columns"]}
    new_cols = {c["name"]: c for c in after["columns"]}
    for name in new_cols.keys() - old_cols.keys():
        found.append(f"column {table}.{name} was added")
    for name in old_cols.keys() - new_cols.keys():
        found.append(f"column {table}.{name} was removed")
    for name in old_cols.keys() & new_cols.keys():
        for key, old in old_cols[name].items():
            if new_cols[name].get(key) != old:
                found.append(
                    f"column {table}.{name}: {key} was {old!r}, is {new_cols[name].get(key)!r}"
                )
    for kind, what in _KINDS.items():
        old_items, new_items = before[kind], after[kind]
        for name in sorted(new_items.keys() - old_items.keys()):
            found.append(f"{what} {name} on {table} was added")
        for name in sorted(old_items.keys() - new_items.keys()):
            found.append(f"{what} {name} on {table} was removed")
        for name in sorted(old_items.keys() & new_items.keys()):
            old, new = old_items[name], new_items[name]
            if kind == "indexes":
                old, new = old["definition"], new["definition"]
            if old != new:
                found.append(f"{what} {name} on {table} changed: {old} -> {new}")
    for key in ("owner", "options", "grants"):
        if before[key] != after[key]:
            found.append(f"{table}: {key} was {before[key]!r}, is {after[key]!r}")
    return found


def secondary_indexes(definition: Definition) -> dict[str, str]:
    """The indexes a clone builds after the bulk load: not behind a constraint, not unique
    (a unique index may be what an ``ON CONFLICT`` of the projection infers)."""
    return {
        name: index["definition"]
        for name, index in definition["indexes"].items()
        if not index["constraint"] and not index["unique"]
    }


_INDEX_DEF = re.compile(r"^CREATE (UNIQUE )?INDEX (\S+) ON (ONLY )?(\S+) USING (.*)$", re.S)


def index_statement(definition: str, schema: str, table: str, *, concurrently: bool) -> str:
    """``CREATE INDEX`` of an index definition (read relative to its table's schema) on
    ``schema.table``, under the same name."""
    match = _INDEX_DEF.match(definition)
    if match is None:
        raise ValueError(f"unexpected index definition: {definition}")
    unique, name, _only, _table, rest = match.groups()
    how = "CONCURRENTLY " if concurrently else ""
    return (
        f"CREATE {unique or ''}INDEX {how}IF NOT EXISTS {name} ON {qi(schema)}.{qi(table)}"
        f" USING {rest}"
    )


_TRIGGER_DEF = re.compile(r"^(CREATE (?:CONSTRAINT )?TRIGGER \S+ .*? ON )(\S+)( .*)$", re.S)


def trigger_statement(definition: str, schema: str, table: str) -> str:
    """A trigger's definition (read relative to its table's schema) on ``schema.table``."""
    match = _TRIGGER_DEF.match(definition)
    if match is None:
        raise ValueError(f"unexpected trigger definition: {definition}")
    return f"{match.group(1)}{qi(schema)}.{qi(table)}{match.group(3)}"


def clone(
    cursor: CursorWrapper, live_schema: str, schema: str, tables: list[str], role: str
) -> dict[str, Definition]:
    """Make empty copies of ``tables`` in ``schema`` (which exists), with every name kept,
    writable by ``role``; return the live definitions they copy.

    Secondary indexes are left out (``secondary_indexes``: built after the bulk load);
    row-level security is switched on at the swap (the rebuild's role must write).
    """
    live = {t: describe(cursor, live_schema, t, live_schema) for t in tables}
    with local_setting(cursor, "search_path", _path(schema, live_schema)):
        for table in tables:
            d = live[table]
            cursor.execute(
                f"CREATE TABLE {qi(schema)}.{qi(table)} (LIKE {qi(live_schema)}.{qi(table)}"
                " INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING GENERATED INCLUDING CONSTRAINTS"
                " INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING COMMENTS"
                " INCLUDING STATISTICS)"
            )
            target = f"{qi(schema)}.{qi(table)}"
            cursor.execute(f"ALTER TABLE {target} OWNER TO {qi(d['owner'])}")
            if d["options"]:
                cursor.execute(f"ALTER TABLE {target} SET ({', '.join(d['options'])})")
            _copy_sequences(cursor, schema, table, d)
        copied = {t: describe(cursor, schema, t, live_schema) for t in tables}
        for table in tables:
            d, target = live[table], f"{qi(schema)}.{qi(table)}"
            for name, (kind, text) in d["constraints"].items():
                if kind in ("p", "u", "x") and name not in copied[table]["constraints"]:
                    cursor.execute(f"ALTER TABLE {target} ADD CONSTRAINT {qi(name)} {text}")
            for index in d["indexes"].values():
                if index["unique"] and not index["constraint"]:
                    cursor.execute(
                        index_statement(index["definition"], schema, table, concurrently=False)
                    )
        for table in tables:
            d, target = live[table], f"{qi(schema)}.{qi(table)}"
            for name, (kind, text) in d["constraints"].items():
                if kind == "f":
                    cursor.execute(f"ALTER TABLE {target} ADD CONSTRAINT {qi(name)} {text}")
            for text in d["triggers"].values():
                cursor.execute(trigger_statement(text, schema, table))
            for name, (permissive, cmd, roles, qual, check) in d["policies"].items():
                commands = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE"}
                statement = (
                    f"CREATE POLICY {qi(name)} ON {target}"
                    f" AS {'PERMISSIVE' if permissive else 'RESTRICTIVE'}"
                    f" FOR {commands.get(cmd, 'ALL')}"
                    f" TO {', '.join('PUBLIC' if r == 'public' else qi(r) for r in roles)}"
                )
                if qual is not None:
                    statement += f" USING ({qual})"
                if check is not None:
                    statement += f" WITH CHECK ({check})"
                cursor.execute(statement)
            _copy_grants(cursor, target, d["grants"])
            cursor.execute(
                f"GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON {target} TO {qi(role)}"
            )
        cursor.execute(f"GRANT USAGE ON SCHEMA {qi(schema)} TO {qi(role)}")
        cursor.execute(
            f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {qi(schema)} TO {qi(role)}"
        )
    return live


def _copy_sequences(cursor: CursorWrapper, schema: str, table: str, d: Definition) -> None:
    """Identity sequences under their live names; a serial column gets a sequence of its own
    (``LIKE`` would leave its default on the live table's sequence)."""
    target = f"{qi(schema)}.{qi(table)}"
    cursor.execute(
        "SELECT a.attname, pg_get_serial_sequence(%(t)s, a.attname) FROM pg_attribute a"
        " WHERE a.attrelid = %(t)s::regclass AND a.attnum > 0 AND NOT a.attisdropped",
        {"t": target},
    )
    made = dict(cursor.fetchall())
    for column in d["columns"]:
        wanted = column["sequence"]
        if wanted is None:
            continue
        if column["identity"]:
            have = (made.get(column["name"]) or "").rpartition(".")[2]
            if have and have != wanted:
                cursor.execute(f"ALTER SEQUENCE {qi(schema)}.{qi(have)} RENAME TO {qi(wanted)}")
        else:
            cursor.execute(f"CREATE SEQUENCE {qi(schema)}.{qi(wanted)}")
            cursor.execute(
                f"ALTER SEQUENCE {qi(schema)}.{qi(wanted)} OWNED BY {target}.{qi(column['name'])}"
            )
            cursor.execute(
                f"ALTER TABLE {target} ALTER COLUMN {qi(column['name'])}"
                f" SET DEFAULT nextval('{qi(schema)}.{qi(wanted)}'::regclass)"
            )


def _copy_grants(cursor: CursorWrapper, target: str, grants: list[str]) -> None:
    cursor.execute(f"REVOKE ALL ON {target} FROM PUBLIC")
    for grant in grants:
        grantee, _, privilege = grant.partition(":")
        option = privilege.endswith("*")
        privilege = privilege.rstrip("*")
        who = "PUBLIC" if grantee == "public" else qi(grantee)
        cursor.execute(
            f"GRANT {privilege} ON {target} TO {who}{' WITH GRANT OPTION' if option else ''}"
        )
