"""The registry's checks of ``ordering``, ``concurrency`` and ``intake_limit``."""

from __future__ import annotations

from typing import Any

import pytest

from subscribers.registry import InvalidSubscriber, describe


def reaction(**attrs: Any) -> object:
    return type("R", (), {"name": "r", "handle": lambda self, event: None, **attrs})()


def test_defaults_are_global_order_concurrency_1_intake_limit_10000() -> None:
    entry = describe(reaction(), "r")
    assert (entry.ordering, entry.concurrency, entry.intake_limit) == ("global", 1, 10_000)
    assert not entry.stream_ordered


def test_a_stream_ordered_reaction_keeps_its_settings() -> None:
    entry = describe(reaction(ordering="stream", concurrency=8, intake_limit=50), "r")
    assert (entry.stream_ordered, entry.concurrency, entry.intake_limit) == (True, 8, 50)


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"ordering": "partition"}, "ordering must be one of"),
        ({"ordering": "stream", "concurrency": 0}, "concurrency must be an integer"),
        ({"ordering": "stream", "concurrency": True}, "concurrency must be an integer"),
        ({"ordering": "stream", "intake_limit": "10"}, "intake_limit must be an integer"),
        ({"concurrency": 4}, "applies only with ordering = 'stream'"),
    ],
)
def test_bad_settings_are_refused_with_a_clear_error(attrs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSubscriber, match=message):
        describe(reaction(**attrs), "r")


def test_a_projection_cannot_be_stream_ordered() -> None:
    item = type("P", (), {"name": "p", "apply": lambda self, e: None, "ordering": "stream"})()
    with pytest.raises(InvalidSubscriber, match="only a Reaction"):
        describe(item, "p")
