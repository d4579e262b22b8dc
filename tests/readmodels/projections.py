"""One projection written twice: plain per-event ORM calls, and through the unit of work.

The differential property (tests/property/test_rows_differential.py) and the worker tests
hold the two to the same tables, row for row. Events (``event_type``, ``data``):

* ``Counted`` {group, name, amount}: a tally counts (created at zero when missing);
* ``TallyDropped`` {group, name}: the tally goes, if there is one;
* ``BoardOpened`` {board, title}: a board, created or retitled;
* ``CardAdded`` {board, card, label}: the board (created when missing) gets the card,
  created, or moved to it from another board;
* ``BoardClosed`` {board}: the board goes, and its cards with it (CASCADE);
* ``CardDropped`` {card}: the card goes.

An event whose ``data`` holds ``"fail": true`` raises while ``FAILING`` is on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

from django.db import connection

from subscribers.rows import Rows
from tests.readmodels.models import Board, Card, Tally


class Applicable(Protocol):
    """A ``RecordedEvent``, or anything with its type and data."""

    @property
    def event_type(self) -> str: ...
    @property
    def data(self) -> dict[str, Any]: ...


class Poisoned(Exception):
    """The event asked to fail."""


class Failing:
    """While ``on``, events marked ``"fail": true`` raise."""

    on: ClassVar[bool] = False


def _check(event: Applicable) -> None:
    if Failing.on and event.data.get("fail"):
        raise Poisoned(f"{event.event_type} {event.data} was told to fail")


def apply_plainly(event: Applicable) -> None:
    """The natural Django way: one event, several ORM calls."""
    kind, data = event.event_type, event.data
    if kind == "Counted":
        tally, _ = Tally.objects.get_or_create(group=data["group"], name=data["name"])
        tally.count += 1
        tally.total += data["amount"]
        tally.save()
    elif kind == "TallyDropped":
        Tally.objects.filter(group=data["group"], name=data["name"]).delete()
    elif kind == "BoardOpened":
        board, created = Board.objects.get_or_create(
            code=data["board"], defaults={"title": data["title"]}
        )
        if not created:
            board.title = data["title"]
            board.save()
    elif kind == "CardAdded":
        board, _ = Board.objects.get_or_create(code=data["board"])
        board.cards += 1
        board.save()
        card = Card.objects.filter(code=data["card"]).first()
        if card is None:
            Card.objects.create(board=board, code=data["card"], label=data["label"])
        else:
            card.board = board
            card.moves += 1
            card.save()
    elif kind == "BoardClosed":
        Board.objects.filter(code=data["board"]).delete()
    elif kind == "CardDropped":
        Card.objects.filter(code=data["card"]).delete()
    _check(event)  # after its writes: a failing event's writes must not land


def apply_through_rows(events: Sequence[Applicable], rows: Rows) -> None:
    """The same logic through the unit of work: load once, change in memory."""
    tallies = {(e.data["group"], e.data["name"]) for e in events if "group" in e.data}
    rows.load(Tally, ("group", "name"), tallies)
    rows.load(Board, code={e.data["board"] for e in events if "board" in e.data})
    rows.load(Card, code={e.data["card"] for e in events if "card" in e.data})
    for event in events:
        kind, data = event.event_type, event.data
        if kind == "Counted":
            tally = rows.get_or_new(Tally, group=data["group"], name=data["name"])
            tally.count += 1
            tally.total += data["amount"]
        elif kind == "TallyDropped":
            gone = rows.get(Tally, group=data["group"], name=data["name"])
            if gone is not None:
                rows.delete(gone)
        elif kind == "BoardOpened":
            board = rows.get(Board, code=data["board"])
            if board is None:
                rows.new(Board, code=data["board"], title=data["title"])
            else:
                board.title = data["title"]
        elif kind == "CardAdded":
            board = rows.get_or_new(Board, code=data["board"])
            board.cards += 1
            card = rows.get(Card, code=data["card"])
            if card is None:
                rows.new(Card, board=board, code=data["card"], label=data["label"])
            else:
                card.board = board
                card.moves += 1
        elif kind == "BoardClosed":
            closed = rows.get(Board, code=data["board"])
            if closed is not None:
                rows.delete(closed)
        elif kind == "CardDropped":
            dropped = rows.get(Card, code=data["card"])
            if dropped is not None:
                rows.delete(dropped)
        _check(event)


EVENT_TYPES = ("Counted", "TallyDropped", "BoardOpened", "CardAdded", "BoardClosed", "CardDropped")


class BoardsPlain:
    """The plain ``apply`` projection (the reference)."""

    name = "test.boards_plain"
    event_types = EVENT_TYPES
    batch_size = 10

    def apply(self, event: Applicable) -> None:
        apply_plainly(event)


class BoardsThroughRows:
    """The unit-of-work projection."""

    name = "test.boards_rows"
    event_types = EVENT_TYPES
    batch_size = 10

    def apply_rows(self, events: Sequence[Applicable], rows: Rows) -> None:
        apply_through_rows(events, rows)


def snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every row of the three tables, by id; a timestamp only as set or not (its value is
    the clock's)."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for model in (Tally, Board, Card):
        rows = []
        for row in model.objects.order_by("pk").values():
            for name in ("created_at", "updated_at"):
                if name in row:
                    row[name] = row[name] is not None
            rows.append(row)
        tables[model._meta.db_table] = rows
    return tables


def reset() -> None:
    """Empty tables, sequences back at 1 (DELETE: cheaper than TRUNCATE, example after
    example, inside one transaction)."""
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"DELETE FROM {table}")
            if table != "test_uow_pinned_boards":  # its key is its board's
                cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), 1, false)", [table])


#: Children before parents.
TABLES = (
    "test_uow_pinned_boards",
    "test_uow_guarded",
    "test_uow_cards",
    "test_uow_boards",
    "test_uow_tallies",
    "test_uow_plain",
)
