"""A unit-of-work projection (``apply_rows``) under the real worker: the batch contract
(a failing event commits the ones before it, and only theirs), and the refusals."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.test import override_settings

from eventstore import NewEvent, RecordedEvent
from subscribers.registry import build_registry
from subscribers.rows import (
    HeldModelQueried,
    NotLoaded,
    NoUniqueKey,
    Rows,
    RowsRefused,
    Unsupported,
)
from tests.factories import append_to
from tests.readmodels.models import Board, Card, Guarded, PinnedBoard, Plain, Tally
from tests.readmodels.projections import (
    BoardsThroughRows,
    Failing,
    apply_plainly,
    reset,
    snapshot,
)
from tests.support import bookmark
from tests.workers import drain

pytestmark = pytest.mark.django_db(transaction=True)

RETRY_FAST = {"max_attempts": 50, "retry_base_seconds": 0.01}


@pytest.fixture
def failing() -> Iterator[None]:
    Failing.on = True
    yield
    Failing.on = False


def expected_after(events: list[RecordedEvent]) -> dict[str, Any]:
    """The tables the plain per-event ORM code leaves after ``events`` (then emptied)."""
    reset()
    for event in events:
        with transaction.atomic():
            apply_plainly(event)
    tables = snapshot()
    reset()
    return tables


def story() -> list[NewEvent]:
    return [
        NewEvent("CardAdded", {"board": "b1", "card": "c1", "label": "one"}),
        NewEvent("Counted", {"group": "g", "name": "x", "amount": 5}),
        NewEvent("CardAdded", {"board": "b2", "card": "c2", "label": "two"}),
        NewEvent("Counted", {"group": "g", "name": "x", "amount": 7}),
        NewEvent("BoardOpened", {"board": "b1", "title": "first"}),
    ]


@override_settings(EVENTDESK=RETRY_FAST)
@pytest.mark.usefixtures("failing")
def test_a_failing_event_commits_the_events_before_it_and_only_theirs() -> None:
    good = append_to("s", story())
    # It fails after its own writes (a count, a card moved): those must not land.
    poison = append_to("p", [NewEvent("CardAdded", {"board": "b2", "card": "c1", "label": "",
                                                    "fail": True})])  # fmt: skip
    after = append_to("t", [NewEvent("Counted", {"group": "g", "name": "x", "amount": 1})])
    before_failure = expected_after(good)
    Failing.on = False
    everything = expected_after(good + poison + after)
    Failing.on = True

    subs = build_registry([BoardsThroughRows])
    name = BoardsThroughRows.name
    drain(subs, lambda: bookmark(name).failing_event_id is not None, "the failure")
    mark = bookmark(name)
    assert mark.cursor == good[-1].cursor
    assert mark.failing_event_id == poison[0].event_id
    assert "Poisoned" in mark.last_error
    assert snapshot() == before_failure

    Failing.on = False
    drain(subs, lambda: bookmark(name).cursor == after[-1].cursor, "the retry")
    assert snapshot() == everything


@override_settings(EVENTDESK=RETRY_FAST)
def test_a_failure_at_the_flush_is_put_on_its_own_event() -> None:
    """The database refuses the batch's writes (a PROTECTed child the batch did not
    load): the worker finds the event by applying them one by one, as for apply_batch."""
    opened = append_to("s", [NewEvent("BoardOpened", {"board": "b1", "title": "t"})])
    drain(build_registry([BoardsThroughRows]), lambda: bookmark("test.boards_rows").cursor
          == opened[-1].cursor)  # fmt: skip
    Guarded.objects.create(board=Board.objects.get(code="b1"), code="g1")
    good = append_to("s2", story()[:2])
    closing = append_to("s3", [NewEvent("BoardClosed", {"board": "b1"})])
    subs = build_registry([BoardsThroughRows])
    drain(subs, lambda: bookmark("test.boards_rows").failing_event_id is not None)
    mark = bookmark("test.boards_rows")
    assert (mark.cursor, mark.failing_event_id) == (good[-1].cursor, closing[0].event_id)
    assert "ProtectedError" in mark.last_error
    assert Tally.objects.get(group="g", name="x").total == 5  # the events before it landed


# --- the refusals, each with its message ------------------------------------------------


def held_board() -> tuple[Rows, Board]:
    """Board "b1" in its table, loaded by a new Rows: the Rows and the row it holds."""
    Board.objects.create(code="b1")
    rows = Rows()
    rows.load(Board, code=["b1"])
    board = rows.get(Board, code="b1")
    assert board is not None
    return rows, board


def test_a_lookup_on_fields_that_are_not_a_unique_key_is_refused() -> None:
    with pytest.raises(NoUniqueKey, match=r"test_readmodels\.Plain has no unique key on \(name\)"):
        Rows().get(Plain, name="x")


def test_a_key_that_was_not_loaded_is_refused_rather_than_queried() -> None:
    rows = Rows()
    rows.load(Board, code=["b1"])
    with pytest.raises(NotLoaded, match=r"test_readmodels\.Board with code='b2' was not loaded"):
        rows.get(Board, code="b2")
    assert rows.get(Board, code="b1") is None  # asked for and missing: known absent


def test_an_orm_query_on_a_held_model_inside_apply_rows_is_refused() -> None:
    Board.objects.create(code="b1")
    rows = Rows()
    with rows.guard():
        rows.load(Board, code=["b1"])
        Tally.objects.count()  # not held: allowed
        with pytest.raises(
            HeldModelQueried, match=r"test_readmodels\.Board was queried through the ORM"
        ):
            Board.objects.filter(code="b1").exists()


def test_a_changed_primary_key_is_refused() -> None:
    rows, board = held_board()
    board.id = 999_999
    with pytest.raises(Unsupported, match=r"test_readmodels\.Board: the primary key of a loaded"):
        rows.flush()


def test_a_changed_auto_now_add_is_refused() -> None:
    Plain.objects.create(name="p")
    rows = Rows()
    rows.load(Plain, id=[Plain.objects.get().pk])
    plain = rows.get(Plain, id=Plain.objects.get().pk)
    assert plain is not None
    plain.stamped_at = None  # type: ignore[assignment]
    with pytest.raises(Unsupported, match=r"test_readmodels\.Plain\.stamped_at: an auto_now_add"):
        rows.flush()


def test_a_delete_that_protect_governs_is_refused_when_the_child_is_held() -> None:
    board = Board.objects.create(code="b1")
    Guarded.objects.create(board=board, code="g1")
    rows = Rows()
    rows.load(Board, code=["b1"])
    rows.load(Guarded, code=["g1"])
    held = rows.get(Board, code="b1")
    assert held is not None
    with pytest.raises(
        Unsupported,
        match=r"test_readmodels\.Guarded\.board: a delete of test_readmodels\.Board"
        r" with on_delete=PROTECT",
    ):
        rows.delete(held)


def test_a_load_after_a_delete_is_refused() -> None:
    rows, held = held_board()
    rows.delete(held)
    with pytest.raises(RowsRefused, match=r"test_readmodels\.Card: rows\.load after rows\.delete"):
        rows.load(Card, code=["c1"])


def test_a_multi_table_inherited_model_is_refused() -> None:
    with pytest.raises(Unsupported, match=r"test_readmodels\.PinnedBoard: a multi-table-inherited"):
        Rows().load(PinnedBoard, code=["b1"])


def test_a_new_row_on_a_held_key_fails_as_create_would() -> None:
    rows = Rows()
    rows.load(Board, code=["b1"])
    rows.new(Board, code="b1")
    with pytest.raises(IntegrityError, match=r"test_readmodels\.Board: a row with code"):
        rows.new(Board, code="b1")


def test_a_batch_costs_the_same_statements_whatever_its_length() -> None:
    """Load once, write once: ten times the events, not one statement more."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from subscribers.projections import apply_through_rows

    def statements(count: int) -> int:
        reset()
        for event in story():  # rows that exist before the batch: loaded and changed
            apply_plainly(event)  # type: ignore[arg-type]
        events = [
            NewEvent(kind, data)
            for n in range(count)
            for kind, data in (
                ("Counted", {"group": "g", "name": f"n{n % 7}", "amount": n}),
                ("CardAdded", {"board": f"b{n % 3}", "card": f"c{n % 11}", "label": "l"}),
                ("BoardOpened", {"board": "b1", "title": str(n)}),
            )
        ]
        with CaptureQueriesContext(connection) as queries, transaction.atomic():
            apply_through_rows(BoardsThroughRows().apply_rows, events)  # type: ignore[arg-type]
        return len(queries)

    # Per model at most: its load, its ids, its inserts, its upsert; and the savepoint.
    assert statements(10) == statements(100) <= 3 * 4 + 2


class ReadsBehindItsOwnBack:
    """Loads boards, then queries them through the manager: refused, on the bookmark."""

    name = "test.reads_behind"
    batch_size = 10

    def apply_rows(self, events: list[RecordedEvent], rows: Rows) -> None:
        rows.load(Board, code=["b1"])
        Board.objects.filter(code="b1").exists()


@override_settings(EVENTDESK=RETRY_FAST)
def test_the_refusal_reaches_the_bookmark_as_the_events_failure() -> None:
    events = append_to("s", [NewEvent("BoardOpened", {"board": "b1", "title": "t"})])
    subs = build_registry([ReadsBehindItsOwnBack])
    drain(subs, lambda: bookmark("test.reads_behind").failing_event_id is not None)
    mark = bookmark("test.reads_behind")
    assert mark.failing_event_id == events[0].event_id
    assert "HeldModelQueried: test_readmodels.Board was queried through the ORM" in mark.last_error


def test_a_composite_key_is_the_same_key_in_either_order() -> None:
    """``key_of`` keeps one plan per lookup shape: the second order gets its own."""
    Tally.objects.create(group="g", name="x", count=3)
    rows = Rows()
    rows.load(Tally, ("name", "group"), [("x", "g"), ("y", "g")])
    first = rows.get(Tally, group="g", name="x")
    assert first is not None
    assert first.count == 3
    assert rows.get(Tally, name="x", group="g") is first
    assert rows.get(Tally, name="y", group="g") is None  # asked for under the other order
    made = rows.get_or_new(Tally, name="y", group="g")
    assert rows.get(Tally, group="g", name="y") is made


def test_a_lookup_shape_with_an_unknown_field_is_refused_each_time() -> None:
    rows = Rows()
    rows.load(Tally, ("group", "name"), [("g", "x")])
    for _ in range(2):  # the refusal is not cached as a plan
        with pytest.raises(RowsRefused, match=r"test_readmodels\.Tally has no field 'nmae'"):
            rows.get(Tally, group="g", nmae="x")
    assert rows.get(Tally, group="g", name="x") is None
