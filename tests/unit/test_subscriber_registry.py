"""The registry refuses a bad configuration at startup, with a message that says why."""

from __future__ import annotations

import pytest

from subscribers.protocols import Projection, Reaction
from subscribers.registry import InvalidSubscriber, UnknownSubscriber, build_registry


class Plain:
    name = "plain"

    def apply(self, event):
        pass


class Slow:
    name = "slow"

    def handle(self, event):
        return []


class Both:
    name = "both"

    def apply(self, event):
        pass

    def handle(self, event):
        return []


class Neither:
    name = "neither"


class ZeroBatch(Plain):
    name = "zero"
    batch_size = 0


class NeedsArgs(Plain):
    def __init__(self, llm):
        self.llm = llm


def test_defaults_by_kind_when_nothing_is_declared() -> None:
    registry = build_registry([Plain, Slow])
    assert [(e.name, e.kind, e.batch_size) for e in registry] == [
        ("plain", "projection", 100),
        ("slow", "reaction", 1),
    ]
    assert registry["plain"].event_types is None
    assert [e.name for e in registry.projections] == ["plain"]
    assert [e.name for e in registry.reactions] == ["slow"]


def test_explicit_protocol_subclasses_get_the_defaults() -> None:
    class Explicit(Projection):
        name = "explicit"
        event_types = ("B", "A")

        def apply(self, event):
            pass

    class Mailer(Reaction):
        name = "mailer"
        batch_size = 3

        def handle(self, event):
            return None

    registry = build_registry([Explicit(), Mailer()])
    assert registry["explicit"].batch_size == 100
    assert registry["explicit"].event_types == ("A", "B")
    assert registry["mailer"].batch_size == 3


def test_dotted_paths_are_imported() -> None:
    registry = build_registry(
        [
            "tests.subscribers.RecordingProjection",
            "tests.subscribers.EchoReaction",
        ]
    )
    assert [e.name for e in registry] == ["test.recorder", "test.echo"]
    assert registry["test.recorder"].batch_size == 10


def test_refuses_a_duplicate_name() -> None:
    with pytest.raises(InvalidSubscriber, match=r"Two subscribers are named 'plain'"):
        build_registry([Plain, Plain()])


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (Neither, r"not a subscriber: it has neither apply\(\) nor handle\(\)"),
        (Both, r"not a subscriber: it has both apply\(\) and handle\(\)"),
        (object(), r"neither apply\(\) nor handle\(\)"),
        (type("Nameless", (), {"apply": lambda self, e: None}), r"has no name"),
    ],
)
def test_refuses_what_is_not_a_subscriber(item: object, message: str) -> None:
    with pytest.raises(InvalidSubscriber, match=message):
        build_registry([item])


@pytest.mark.parametrize("size", [0, -1, 2.5, "10", True])
def test_refuses_a_batch_size_below_one_or_not_an_int(size: object) -> None:
    item = Plain()
    item.batch_size = size  # type: ignore[attr-defined]
    with pytest.raises(InvalidSubscriber, match=r"'plain'\): batch_size must be an integer"):
        build_registry([item])


def test_refuses_zero_batch_from_a_class() -> None:
    with pytest.raises(
        InvalidSubscriber, match="batch_size must be an integer of at least 1, got 0"
    ):
        build_registry([ZeroBatch])


def test_refuses_an_unimportable_path_and_a_class_needing_arguments() -> None:
    with pytest.raises(InvalidSubscriber, match=r"Cannot import subscriber 'nowhere\.Missing'"):
        build_registry(["nowhere.Missing"])
    with pytest.raises(InvalidSubscriber, match="cannot instantiate the subscriber class"):
        build_registry([NeedsArgs])


def test_select_by_name_and_kind() -> None:
    registry = build_registry([Plain, Slow])
    assert [e.name for e in registry.select(["slow"])] == ["slow"]
    assert [e.name for e in registry.select(kinds=["projection"])] == ["plain"]
    with pytest.raises(UnknownSubscriber, match="No subscriber named 'ghost'"):
        registry.select(["ghost"])
