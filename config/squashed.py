"""The squashed migrations: refuse a database part-way through the history they replace.

Each app's migrations were squashed into one and the replaced files removed. Django takes a
squashed migration as applied on a database that applied *every* migration it replaces, and
runs it on a new one. On a database that applied only *some* of them, Django cannot plan
that app (the replaced files are gone): it fails with an error about model states, or
quietly leaves the tables as they were. The guard says so instead, with what to do, twice:
as a database system check (``manage.py migrate`` runs it first, and ``manage.py check
--database default``), and in Eventdesk's ``migrate`` command
(eventstore/management/commands/migrate.py), for callers that skip the checks
(``call_command("migrate")``, the test runner), before Django plans anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core import checks
from django.core.management import CommandError
from django.db import DatabaseError, connections
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

OUR_APPS = ("demo", "eventstore", "reactions_admin", "subscribers")
HINT = (
    "Upgrade this database first with the Eventdesk release before the squash (commit "
    "7e8e667): run `manage.py migrate` there, then come back (docs/deployment.md, Upgrades)."
)


class PartlyMigratedDatabase(CommandError):
    """The database applied some, not all, of the migrations a squashed one replaces."""


def partly_migrated(alias: str) -> list[str]:
    """One line per squashed migration whose replaced history this database has in part."""
    connection = connections[alias]
    recorder = MigrationRecorder(connection)
    if not recorder.has_table():
        return []
    applied = set(recorder.applied_migrations())
    loader = MigrationLoader(connection, ignore_no_migrations=True, load=False)
    loader.load_disk()
    problems = []
    for (app, name), migration in sorted(loader.disk_migrations.items()):
        replaces = getattr(migration, "replaces", None)
        if app not in OUR_APPS or not replaces or (app, name) in applied:
            continue
        done = [n for a, n in replaces if (a, n) in applied]
        if done and len(done) < len(replaces):
            problems.append(
                f"{app}: this database applied {', '.join(done)} but not the rest of the "
                f"{len(replaces)} migrations that {name} replaces"
            )
    return problems


@checks.register(checks.Tags.database)
def check_no_partial_squashed_history(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **_: Any,
) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    for alias in databases or ():
        try:
            problems = partly_migrated(alias)
        except DatabaseError:
            continue  # no database to ask: the other checks and commands say so
        errors.extend(checks.Error(problem, hint=HINT, id="eventdesk.E001") for problem in problems)
    return errors
