"""``rows.assume_new``: keys a projection knows have no row yet, taken without a query,
and never written over a row that exists after all. And the flush of a batch whose only
writes are new rows: one INSERT, ids in creation order, as ``create`` would take them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction

from subscribers.rows import NoUniqueKey, Rows, RowsRefused
from tests.readmodels.models import Board, Tally
from tests.readmodels.projections import reset

pytestmark = pytest.mark.django_db


def statements_of(run: Callable[[], Any]) -> list[str]:
    """Every statement ``run`` sent through Django's connection."""
    sent: list[str] = []

    def spy(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        sent.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        run()
    return sent


def flushed(fill: Callable[[Rows], None]) -> list[str]:
    """The statements of one unit of work: ``fill(rows)``, then the flush."""

    def run() -> None:
        rows = Rows()
        with rows.guard():
            fill(rows)
        rows.flush()

    return statements_of(run)


def test_assumed_new_keys_cost_no_query_and_the_new_rows_one_insert() -> None:
    reset()
    with transaction.atomic():
        Tally.objects.create(group="g", name="before")  # takes an id from the sequence
        expected_ids = [Tally.objects.create(group="g", name=n).pk for n in ("a", "b")]
        transaction.set_rollback(True)
    reset()
    Tally.objects.create(group="g", name="before")

    def fill(rows: Rows) -> None:
        rows.assume_new(Tally, ("group", "name"), [("g", "a"), ("g", "b")])
        for name in ("a", "b", "a"):
            rows.get_or_new(Tally, group="g", name=name).count += 1

    sent = flushed(fill)
    assert len(sent) == 1
    assert sent[0].startswith('INSERT INTO "test_uow_tallies"')
    got = {(t.name, t.count, t.pk) for t in Tally.objects.filter(name__in=["a", "b"])}
    assert got == {("a", 2, expected_ids[0]), ("b", 1, expected_ids[1])}


def test_an_assumed_new_key_whose_row_exists_fails_as_create_would() -> None:
    reset()
    Tally.objects.create(group="g", name="a", count=5)
    Board.objects.create(code="b1", title="kept")

    def fill(rows: Rows) -> None:
        rows.assume_new(Tally, ("group", "name"), [("g", "a")])
        rows.assume_new(Board, code=["b1"])
        rows.get_or_new(Tally, group="g", name="a").count += 1
        rows.get_or_new(Board, code="b1", defaults={"title": "overwritten"})

    with pytest.raises(IntegrityError), transaction.atomic():
        flushed(fill)
    assert Tally.objects.get(group="g", name="a").count == 5
    assert Board.objects.get(code="b1").title == "kept"


def test_a_new_row_beside_changed_ones_that_exists_after_all_is_not_overwritten() -> None:
    """With changed loaded rows in the same flush (the upsert path), an assumed-new row
    whose key exists still fails rather than overwriting it."""
    reset()
    Tally.objects.create(group="g", name="loaded")
    Tally.objects.create(group="g", name="a", count=5)

    def fill(rows: Rows) -> None:
        rows.load(Tally, ("group", "name"), [("g", "loaded")])
        rows.assume_new(Tally, ("group", "name"), [("g", "a")])
        rows.get_or_new(Tally, group="g", name="loaded").count += 1
        rows.get_or_new(Tally, group="g", name="a").count += 1

    with pytest.raises(IntegrityError), transaction.atomic():
        flushed(fill)
    assert Tally.objects.get(group="g", name="a").count == 5
    assert Tally.objects.get(group="g", name="loaded").count == 0


def test_assume_new_is_refused_for_a_held_row_and_for_fields_that_are_not_a_key() -> None:
    reset()
    Board.objects.create(code="b1")
    rows = Rows()
    rows.load(Board, code=["b1"])
    with pytest.raises(RowsRefused, match=r"test_readmodels\.Board: rows\.assume_new of code"):
        rows.assume_new(Board, code=["b1"])
    with pytest.raises(NoUniqueKey, match=r"test_readmodels\.Board has no unique key on \(title\)"):
        rows.assume_new(Board, title=["t"])
