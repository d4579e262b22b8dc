"""A worker started against a database that ``migrate`` has not brought up to the code
refuses to start, naming the migrations, instead of failing on its first batch."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from subscribers.management.commands.run_subscribers import refuse_unapplied_migrations
from subscribers.worker import Worker

pytestmark = pytest.mark.django_db  # django_migrations is rewritten in a rolled-back transaction

LACKS = (
    r"the database lacks 1 migration\(s\) the worker needs"
    r" \(eventstore\.0004_projection_commit\): run `manage\.py migrate` first"
)


def _forget(app: str, name: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_migrations WHERE app = %s AND name = %s", [app, name])
        assert cursor.rowcount == 1


def test_an_up_to_date_database_passes() -> None:
    refuse_unapplied_migrations()


def test_a_missing_migration_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    _forget("eventstore", "0004_projection_commit")
    monkeypatch.setattr(Worker, "run", lambda self: pytest.fail("the worker started"))
    with pytest.raises(CommandError, match=LACKS):
        call_command("run_subscribers")


def test_a_run_once_is_not_held_up_by_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--once`` (cron, tests, the benchmark's in-process worker) skips the check: it
    reads the migration graph, a tenth of a second per start."""
    _forget("eventstore", "0004_projection_commit")
    ran: list[bool] = []

    def run_once(self: Worker) -> int:
        ran.append(True)
        return 0

    monkeypatch.setattr(Worker, "run_once", run_once)
    call_command("run_subscribers", "--once")
    assert ran == [True]
