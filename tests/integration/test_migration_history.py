"""The squashed migrations: a database migrated by the history they replace upgrades.

Each app's migrations were squashed into one (``manage.py squashmigrations``) and the
replaced files removed. A database that applied every replaced migration must be taken as
up to date, with nothing to run; a new one runs the squashed migration (the whole suite
does). These tests rewrite ``django_migrations`` inside a rolled-back transaction so that
it reads as a database migrated before the squash, then ask Django's own executor.
"""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor

from config.squashed import PartlyMigratedDatabase, partly_migrated

pytestmark = pytest.mark.django_db

# The names the squashed migrations replace: what django_migrations holds in a database
# migrated before the squash.
HISTORY: dict[str, list[str]] = {
    "demo": ["0001_initial", "0002_scorecards"],
    "eventstore": ["0001_initial", "0002_append_only"],
    "reactions_admin": [
        "0001_initial",
        "0002_api_token_revocation_final",
        "0003_parked_streams",
        "0004_view_console_permission",
        "0005_rebuild_projection_permission",
        "0006_token_revocation_audited",
    ],
    "subscribers": [
        "0001_initial",
        "0002_reaction_work",
        "0003_subscriber_samples",
        "0004_worker_heartbeats",
        "0005_bookmark_pause",
        "0006_rebuilds",
        "0007_worker_wakeups",
        "0008_reaction_work_first_parked_at",
    ],
}


def _record_as_before_the_squash(history: dict[str, list[str]]) -> None:
    with connection.cursor() as cursor:
        # The rows of the squashed migrations and of what they replace (Django records
        # both); the migrations that came after the squash stay recorded.
        for app, names in HISTORY.items():
            cursor.execute(
                "DELETE FROM django_migrations WHERE app = %s"
                " AND (name LIKE '0001_squashed_%%' OR name = ANY(%s))",
                [app, names],
            )
        for app, names in history.items():
            for name in names:
                cursor.execute(
                    "INSERT INTO django_migrations (app, name, applied) VALUES (%s, %s, now())",
                    [app, name],
                )


def _plan() -> list[str]:
    executor = MigrationExecutor(connection)
    executor.loader.check_consistent_history(connection)
    targets = executor.loader.graph.leaf_nodes()
    return [f"{m.app_label}.{m.name}" for m, _ in executor.migration_plan(targets)]


def test_every_app_has_one_squashed_migration_replacing_its_whole_history() -> None:
    loader = MigrationExecutor(connection).loader
    for app, names in HISTORY.items():
        squashed = [
            migration
            for (label, _), migration in loader.disk_migrations.items()
            if label == app and getattr(migration, "replaces", None)
        ]
        assert len(squashed) == 1, (app, squashed)
        assert squashed[0].replaces == [(app, name) for name in names]
        assert squashed[0].name.startswith("0001_squashed_")


def test_a_database_migrated_before_the_squash_has_nothing_to_run() -> None:
    with transaction.atomic():
        _record_as_before_the_squash(HISTORY)
        assert _plan() == []
        transaction.set_rollback(True)


def test_a_database_part_way_through_the_old_history_is_refused_clearly() -> None:
    # Django alone cannot plan such a database (the replaced files are gone) and fails with
    # a model-state error; the check stops `migrate` first and says what to do.
    partial = {**HISTORY, "subscribers": HISTORY["subscribers"][:5]}
    with transaction.atomic():
        _record_as_before_the_squash(partial)
        assert partly_migrated("default") == [
            "subscribers: this database applied 0001_initial, 0002_reaction_work, "
            "0003_subscriber_samples, 0004_worker_heartbeats, 0005_bookmark_pause but not "
            "the rest of the 8 migrations that "
            "0001_squashed_0008_reaction_work_first_parked_at replaces"
        ]
        with pytest.raises(SystemCheckError) as refused:
            call_command("migrate", verbosity=0, skip_checks=False)
        assert "eventdesk.E001" in str(refused.value)
        assert "Upgrade this database first" in str(refused.value)
        transaction.set_rollback(True)


def test_a_migrate_that_skips_the_checks_is_refused_before_it_changes_anything() -> None:
    # call_command("migrate") and the test runner skip the system checks; migrate still refuses.
    partial = {**HISTORY, "subscribers": HISTORY["subscribers"][:6]}
    with transaction.atomic():
        _record_as_before_the_squash(partial)
        with pytest.raises(PartlyMigratedDatabase) as refused:
            call_command("migrate", verbosity=0)
        assert str(refused.value).startswith("subscribers: this database applied 0001_initial")
        assert "0006_rebuilds but not the rest of the 8 migrations" in str(refused.value)
        assert "Upgrade this database first" in str(refused.value)
        transaction.set_rollback(True)


def test_a_database_with_the_whole_old_history_passes_the_check() -> None:
    with transaction.atomic():
        _record_as_before_the_squash(HISTORY)
        assert partly_migrated("default") == []
        transaction.set_rollback(True)
