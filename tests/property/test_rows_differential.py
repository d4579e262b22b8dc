"""Hypothesis, on the real PostgreSQL: the unit of work leaves the tables that plain
per-event ORM calls leave, row for row (ids, defaults, timestamps set, cascades)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from subscribers.rows import Rows
from tests.readmodels.projections import apply_plainly, apply_through_rows, reset, snapshot

pytestmark = pytest.mark.django_db

BATCH_SIZES = (1, 7, 100, 1000)


@dataclass(frozen=True)
class Ev:
    event_type: str
    data: dict[str, Any] = field(default_factory=dict)


# Few keys, so one key is hit many times in a batch, deleted and made again.
groups, names = st.sampled_from("gh"), st.sampled_from("xyz")
boards, cards = st.sampled_from(["b0", "b1", "b2"]), st.sampled_from(["c0", "c1", "c2", "c3"])
labels = st.sampled_from(["", "red", "blue"])
events = st.one_of(
    st.builds(
        lambda g, n, a: Ev("Counted", {"group": g, "name": n, "amount": a}),
        groups,
        names,
        st.integers(-5, 1000),
    ),
    st.builds(lambda g, n: Ev("TallyDropped", {"group": g, "name": n}), groups, names),
    st.builds(lambda b, t: Ev("BoardOpened", {"board": b, "title": t}), boards, labels),
    st.builds(
        lambda b, c, t: Ev("CardAdded", {"board": b, "card": c, "label": t}), boards, cards, labels
    ),
    st.builds(lambda b: Ev("BoardClosed", {"board": b}), boards),
    st.builds(lambda c: Ev("CardDropped", {"card": c}), cards),
)


def through_plain_orm(history: list[Ev], batch: list[Ev]) -> dict[str, Any]:
    reset()
    for event in [*history, *batch]:
        with transaction.atomic():
            apply_plainly(event)
    return snapshot()


def through_rows(history: list[Ev], batch: list[Ev], size: int) -> dict[str, Any]:
    reset()
    for event in history:
        with transaction.atomic():
            apply_plainly(event)
    for start in range(0, len(batch), size):
        with transaction.atomic():
            rows = Rows()
            with rows.guard():
                apply_through_rows(batch[start : start + size], rows)
            rows.flush()
    return snapshot()


def check(history: list[Ev], batch: list[Ev], size: int) -> None:
    """``history`` makes rows that exist before the batch (loaded, changed, deleted)."""
    with transaction.atomic():  # an example that fails must not poison the next
        expected = through_plain_orm(history, batch)
        got = through_rows(history, batch, size)
        transaction.set_rollback(True)
    assert got == expected


unhealthy = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


def examples(max_examples: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """The test over ``max_examples`` drawn histories, batches and batch sizes."""

    def over(test: Callable[..., None]) -> Callable[..., None]:
        drawn = given(
            history=st.lists(events, max_size=12),
            batch=st.lists(events, min_size=1, max_size=60),
            size=st.sampled_from(BATCH_SIZES),
        )
        limits = settings(max_examples=max_examples, deadline=None, suppress_health_check=unhealthy)
        return limits(drawn(test))

    return over


@examples(150)
def test_rows_leave_the_tables_plain_orm_calls_leave(
    history: list[Ev], batch: list[Ev], size: int
) -> None:
    check(history, batch, size)


@pytest.mark.slow
@examples(600)
def test_rows_leave_the_tables_plain_orm_calls_leave_many_examples(
    history: list[Ev], batch: list[Ev], size: int
) -> None:
    check(history, batch, size)


@pytest.mark.parametrize("size", [100, 1000])
def test_a_long_random_history_in_large_batches(size: int) -> None:
    draw = random.Random(16)
    kinds = [
        lambda: Ev(
            "Counted", {"group": draw.choice("gh"), "name": draw.choice("xyz"), "amount": 1}
        ),
        lambda: Ev("TallyDropped", {"group": "g", "name": draw.choice("xyz")}),
        lambda: Ev("BoardOpened", {"board": f"b{draw.randrange(8)}", "title": "t"}),
        lambda: Ev(
            "CardAdded",
            {"board": f"b{draw.randrange(8)}", "card": f"c{draw.randrange(20)}", "label": "l"},
        ),
        lambda: Ev("BoardClosed", {"board": f"b{draw.randrange(8)}"}),
        lambda: Ev("CardDropped", {"card": f"c{draw.randrange(20)}"}),
    ]
    weights = [6, 1, 2, 6, 1, 1]
    batch = [draw.choices(kinds, weights)[0]() for _ in range(2500)]
    expected = through_plain_orm([], batch)
    assert through_rows([], batch, size) == expected
