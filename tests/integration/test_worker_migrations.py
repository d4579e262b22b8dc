"""A worker started against a database that ``migrate`` has not brought up to the code
refuses to start, naming the migrations, instead of failing on its first batch."""

from __future__ import annotations

import logging
import uuid

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


def test_a_database_part_way_through_a_squashed_history_is_refused() -> None:
    """Django's loader shows no node left to apply for such an app: the squash check
    names what it applied."""
    with connection.cursor() as cursor:
        # Django records the squash and every migration it replaces: forget them all.
        cursor.execute("DELETE FROM django_migrations WHERE app = 'subscribers'")
        for name in ("0001_initial", "0002_reaction_work"):
            cursor.execute(
                "INSERT INTO django_migrations (app, name, applied)"
                " VALUES ('subscribers', %s, now())",
                [name],
            )
    with pytest.raises(
        CommandError,
        match=r"subscribers: this database applied 0001_initial, 0002_reaction_work but not the"
        r" rest of the 8 migrations .* Upgrade this database first",
    ):
        refuse_unapplied_migrations()


def test_a_database_that_cannot_be_asked_is_let_pass_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A role that may not read django_migrations (or a database that is down: the worker
    waits an outage out) gets a warning, not a crash at start."""
    role = f"eventdesk_test_noread_{uuid.uuid4().hex[:12]}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{role}"')  # rolled back with the test's transaction
        cursor.execute(f'SET LOCAL ROLE "{role}"')
    with caplog.at_level(logging.WARNING, logger="eventdesk.worker"):
        refuse_unapplied_migrations()
    assert "could not check the database's migrations" in caplog.text
    assert "permission denied for table django_migrations" in caplog.text
