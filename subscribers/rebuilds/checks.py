"""Django system checks on the tables projections declare (``manage.py check``, and
``run_subscribers`` at start)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core import checks
from django.db import DEFAULT_DB_ALIAS, connection
from django.db.migrations.executor import MigrationExecutor

from subscribers.rebuilds.declared import (
    declared_models,
    declared_tables,
    missing_tables,
    model_problem,
    outside_foreign_keys_in_models,
)
from subscribers.registry import configured_registry

TAG = "eventdesk_rebuilds"


@checks.register(checks.Tags.models, TAG)
def check_declared_tables(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **_: Any,
) -> list[checks.CheckMessage]:
    """Errors: a table declared by two projections, a declared model that is not a table
    of this database. Warning: a foreign key from outside into a projection's tables."""
    registry = configured_registry()
    if registry is None:
        return []  # the broken configuration is reported where it is loaded
    found: list[checks.CheckMessage] = []
    owners: dict[str, str] = {}
    for entry in registry.projections:
        declared = declared_models(entry.subscriber)
        if not declared:
            continue
        for model in declared:
            problem = model_problem(model)
            if problem is not None:
                found.append(
                    checks.Error(
                        f"Projection {entry.name!r} declares a model that is not a table of"
                        f" this database: {problem}.",
                        hint="List the projection's own concrete Django models in models.",
                        obj=entry.source,
                        id="subscribers.E101",
                    )
                )
        tables = [t.table for t in declared_tables(entry)]
        for table in tables:
            if table in owners and owners[table] != entry.name:
                found.append(
                    checks.Error(
                        f"The table {table!r} is declared by two projections:"
                        f" {owners[table]!r} and {entry.name!r}.",
                        hint="A table belongs to one projection; a rebuild replaces it whole.",
                        obj=entry.source,
                        id="subscribers.E102",
                    )
                )
            owners.setdefault(table, entry.name)
        for fk in outside_foreign_keys_in_models(set(tables)):
            found.append(
                checks.Warning(
                    f"A foreign key from outside points at a table of projection"
                    f" {entry.name!r}: {fk}. A swap would break it, so the projection cannot"
                    " be rebuilt (it runs as before).",
                    hint="Remove the foreign key, or declare both tables in the projection.",
                    obj=entry.source,
                    id="subscribers.W101",
                )
            )
        if databases and DEFAULT_DB_ALIAS in databases and tables and migrated():
            for table in missing_tables(tables):
                found.append(
                    checks.Error(
                        f"Projection {entry.name!r} declares the table {table!r}, which is not"
                        " a table of this database (not migrated?).",
                        hint="Run manage.py migrate, or fix the projection's models.",
                        obj=entry.source,
                        id="subscribers.E103",
                    )
                )
    return found


def migrated() -> bool:
    """Whether every migration is applied. ``manage.py migrate`` runs the checks before it
    migrates: a fresh database has none of the declared tables yet, and refusing then
    would make the tables impossible to create."""
    executor = MigrationExecutor(connection)
    return not executor.migration_plan(executor.loader.graph.leaf_nodes())
