"""The tables a projection declares it owns (``models = (Run, ...)``), and what stands in
the way of rebuilding them."""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps
from django.db import DEFAULT_DB_ALIAS, connection, models, router

from subscribers.registry import Registered


@dataclass(frozen=True)
class DeclaredTable:
    """One table a projection owns: its model's label and its table name."""

    label: str
    table: str


def declared_models(subscriber: object) -> tuple[object, ...] | None:
    """What the projection puts in ``models`` (None when it declares nothing)."""
    found = getattr(subscriber, "models", None)
    if found is None:
        return None
    if isinstance(found, (type, str)):
        return (found,)
    try:
        return tuple(found)
    except TypeError:
        return (found,)


def model_problem(model: object) -> str | None:
    """Why ``model`` is not a table of this database (None when it is one)."""
    if not (isinstance(model, type) and issubclass(model, models.Model)):
        return f"{model!r} is not a Django model"
    meta = model._meta
    if meta.abstract:
        return f"{meta.label} is abstract: it has no table"
    if meta.proxy:
        return f"{meta.label} is a proxy: its table belongs to another model"
    if not meta.managed:
        return f"{meta.label} is not managed by Django (managed = False)"
    if meta.label_lower not in {m._meta.label_lower for m in apps.get_models()}:
        return f"{meta.label} is not a model of an installed app"
    if router.db_for_write(model) != DEFAULT_DB_ALIAS:
        return f"{meta.label} is routed to the database {router.db_for_write(model)!r}"
    return None


def declared_tables(entry: Registered) -> list[DeclaredTable]:
    """The projection's tables (only its valid models), in declaration order."""
    tables: list[DeclaredTable] = []
    for model in declared_models(entry.subscriber) or ():
        if model_problem(model) is None:
            assert isinstance(model, type)
            assert issubclass(model, models.Model)
            tables.append(DeclaredTable(model._meta.label, model._meta.db_table))
    return tables


def outside_foreign_keys_in_models(tables: set[str]) -> list[str]:
    """Django foreign keys from a table outside ``tables`` into one of them."""
    found: list[str] = []
    for model in apps.get_models():
        if model._meta.db_table in tables:
            continue
        for field in model._meta.get_fields():
            target = getattr(field, "related_model", None)
            is_key = getattr(field, "many_to_one", False) or getattr(field, "one_to_one", False)
            if is_key and getattr(field, "concrete", False):  # noqa: SIM102
                if (
                    isinstance(target, type)
                    and issubclass(target, models.Model)
                    and target._meta.db_table in tables
                ):
                    found.append(
                        f"{model._meta.db_table}.{field.name} -> {target._meta.db_table}"
                        f" ({model._meta.label})"
                    )
    return found


_OUTSIDE_FKS = """
SELECT c.conname, src.relname, dst.relname
FROM pg_constraint c
JOIN pg_class src ON src.oid = c.conrelid
JOIN pg_class dst ON dst.oid = c.confrelid
WHERE c.contype = 'f' AND c.confrelid = ANY(%(oids)s::regclass[])
  AND NOT c.conrelid = ANY(%(oids)s::regclass[])
ORDER BY 2, 1
"""


def outside_foreign_keys_in_database(tables: list[str]) -> list[str]:
    """Foreign keys in the database from a table outside ``tables`` into one of them."""
    if not tables:
        return []
    with connection.cursor() as cursor:
        cursor.execute(_OUTSIDE_FKS, {"oids": tables})
        return [f"{src} ({name}) -> {dst}" for name, src, dst in cursor.fetchall()]


def missing_tables(tables: list[str]) -> list[str]:
    """The names among ``tables`` that are not tables of this database."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t FROM unnest(%(tables)s::text[]) AS t"
            " WHERE to_regclass(quote_ident(t)) IS NULL",
            {"tables": tables},
        )
        return [row[0] for row in cursor.fetchall()]


def rebuildable(entry: Registered, *, check_database: bool = True) -> list[str]:
    """What stands in the way of rebuilding ``entry`` (empty: it can be rebuilt).

    A reaction is never rebuildable (its effects happened); the caller refuses it with a
    code of its own before asking this.
    """
    if entry.kind != "projection":
        return [f"{entry.name} is a reaction: its effects already happened"]
    declared = declared_models(entry.subscriber)
    if not declared:
        return [f"{entry.name} declares no models = (...): the tables it owns are unknown"]
    problems = [p for p in (model_problem(m) for m in declared) if p is not None]
    tables = [t.table for t in declared_tables(entry)]
    problems += [
        f"a foreign key from outside points at its tables: {fk}; remove it, or declare"
        " both tables in the projection"
        for fk in outside_foreign_keys_in_models(set(tables))
    ]
    if check_database and not problems:
        problems += [f"{t} is not a table of this database" for t in missing_tables(tables)]
        if not problems:
            problems += [
                f"a foreign key from outside points at its tables: {fk}"
                for fk in outside_foreign_keys_in_database(tables)
            ]
    return problems
