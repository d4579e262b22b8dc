"""The system checks on the tables projections declare (``manage.py check``)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from subscribers.rebuilds.checks import check_declared_tables


class NotAModel:
    name = "test.rb_not_a_model"
    models = ("rb_totals",)

    def apply(self, event: Any) -> None:
        pass


def ids(**kwargs: Any) -> list[str]:
    return sorted(message.id or "" for message in check_declared_tables(**kwargs))


def configure(settings: Any, *paths: str) -> None:
    settings.EVENTDESK = {"subscribers": list(paths)}


def test_the_demo_configuration_passes(settings: Any) -> None:
    configure(
        settings,
        "demo.projections.RunBoard",
        "demo.projections.AgentStatsProjection",
        "demo.projections.CautionLog",
    )
    assert ids() == []


def test_a_table_declared_by_two_projections_is_an_error(settings: Any) -> None:
    configure(settings, "tests.rebuilds.Totals", "tests.rebuilds.TwinTotals")
    messages = check_declared_tables()
    assert sorted(m.id or "" for m in messages) == ["subscribers.E102", "subscribers.E102"]
    assert "rb_totals" in messages[0].msg
    assert "'test.rb_totals' and 'test.rb_twin'" in messages[0].msg


def test_a_declared_model_that_is_no_table_is_an_error(settings: Any) -> None:
    configure(settings, "tests.integration.test_rebuild_checks.NotAModel")
    assert ids() == ["subscribers.E101"]


def test_a_foreign_key_from_outside_is_a_warning(settings: Any) -> None:
    configure(settings, "tests.rebuilds.PointedAt")
    messages = check_declared_tables()
    assert [m.id for m in messages] == ["subscribers.W101"]
    assert "rb_pointer.lonely -> rb_lonely" in messages[0].msg


@pytest.mark.usefixtures("rebuild_tables")
def test_a_declared_table_missing_from_the_database_is_an_error(settings: Any) -> None:
    configure(settings, "tests.rebuilds.NoModels", "tests.rebuilds.Totals")
    assert ids(databases=["default"]) == []
    with connection.cursor() as cursor:  # as if its migration had not run
        cursor.execute("DROP TABLE rb_entries, rb_totals")
    assert ids() == []
    assert ids(databases=["default"]) == ["subscribers.E103", "subscribers.E103"]
