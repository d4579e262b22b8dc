"""The configured subscribers (``EVENTDESK_SUBSCRIBERS``), checked once at startup."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from config.options import options
from subscribers.protocols import (
    INTAKE_LIMIT,
    ORDERINGS,
    PROJECTION_BATCH_SIZE,
    REACTION_BATCH_SIZE,
    REACTION_CONCURRENCY,
)

Kind = Literal["projection", "reaction"]
Ordering = Literal["global", "stream"]
MAX_NAME_LENGTH = 200  # projection_bookmarks.subscriber_name


class InvalidSubscriber(ImproperlyConfigured):
    """The subscriber configuration is wrong; the message says which entry and why."""


class UnknownSubscriber(KeyError):
    """A subscriber name that is not configured."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown subscriber"


@dataclass(frozen=True)
class Registered:
    """One configured subscriber with its settings resolved (defaults applied)."""

    name: str
    kind: Kind
    subscriber: Any
    batch_size: int
    event_types: tuple[str, ...] | None
    start_at_head: bool
    source: str
    #: "global" (one lane, strict global order) or "stream" (order within each stream).
    ordering: Ordering = "global"
    #: Stream ordering: ``handle`` calls in flight at once, over all workers together.
    concurrency: int = 1
    #: Stream ordering: unfinished events of non-parked streams before intake pauses.
    intake_limit: int = INTAKE_LIMIT
    #: A reaction's own ``handle_timeout_seconds`` (None: the option in force).
    handle_timeout_seconds: float | None = None

    @property
    def stream_ordered(self) -> bool:
        """True for a reaction that keeps order within each stream only."""
        return self.ordering == "stream"

    @property
    def handle_timeout(self) -> float:
        """How long one ``handle`` may run before the attempt fails: the reaction's own
        ``handle_timeout_seconds``, or the option in force."""
        return self.handle_timeout_seconds or options().handle_timeout_seconds

    @property
    def apply_batch(self) -> Any:
        """The projection's ``apply_batch``, or None when it has only ``apply``."""
        found = getattr(self.subscriber, "apply_batch", None)
        return found if callable(found) else None

    @property
    def apply_rows(self) -> Any:
        """The projection's ``apply_rows`` (the unit-of-work hook), or None."""
        found = getattr(self.subscriber, "apply_rows", None)
        return found if callable(found) else None


class SubscriberRegistry:
    """The subscribers in force, by name, in configuration order."""

    def __init__(self, entries: Iterable[Registered] = ()) -> None:
        self._by_name: dict[str, Registered] = {}
        for entry in entries:
            if entry.name in self._by_name:
                raise InvalidSubscriber(
                    f"Two subscribers are named {entry.name!r} ({self._by_name[entry.name].source}"
                    f" and {entry.source}); subscriber names must be unique."
                )
            self._by_name[entry.name] = entry

    def __iter__(self) -> Iterator[Registered]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> Registered:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownSubscriber(f"No subscriber named {name!r}") from None

    def get(self, name: str) -> Registered | None:
        return self._by_name.get(name)

    @property
    def projections(self) -> list[Registered]:
        return [entry for entry in self if entry.kind == "projection"]

    @property
    def reactions(self) -> list[Registered]:
        return [entry for entry in self if entry.kind == "reaction"]

    def select(
        self, names: Iterable[str] = (), *, kinds: Iterable[Kind] = ("projection", "reaction")
    ) -> SubscriberRegistry:
        """A registry of only the named subscribers (all when none named) of the given kinds."""
        wanted = list(names)
        unknown = [name for name in wanted if name not in self._by_name]
        if unknown:
            known = ", ".join(self._by_name) or "none"
            raise UnknownSubscriber(
                f"No subscriber named {', '.join(map(repr, unknown))} (configured: {known})"
            )
        allowed = set(kinds)
        return SubscriberRegistry(
            entry
            for entry in self
            if (not wanted or entry.name in wanted) and entry.kind in allowed
        )


def describe(item: object, source: str) -> Registered:
    """Check one subscriber object and resolve its settings; raise ``InvalidSubscriber``."""
    if isinstance(item, type):
        try:
            item = item()
        except TypeError as exc:
            raise InvalidSubscriber(
                f"{source}: cannot instantiate the subscriber class without arguments ({exc});"
                " configure an instance instead"
            ) from exc
    has_apply = any(
        callable(getattr(item, hook, None)) for hook in ("apply", "apply_batch", "apply_rows")
    )
    has_handle = callable(getattr(item, "handle", None))
    if has_apply == has_handle:
        what = "both apply() and handle()" if has_apply else "neither apply() nor handle()"
        raise InvalidSubscriber(
            f"{source} is not a subscriber: it has {what}. A Projection defines apply(event)"
            " (or apply_batch(events), or apply_rows(events, rows)); a Reaction defines"
            " handle(event)."
        )
    kind: Kind = "projection" if has_apply else "reaction"
    name = getattr(item, "name", None)
    if not isinstance(name, str) or not name.strip():
        raise InvalidSubscriber(f"{source} is not a subscriber: it has no name (a non-empty str)")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidSubscriber(f"{source}: name is longer than {MAX_NAME_LENGTH} characters")
    default = PROJECTION_BATCH_SIZE if kind == "projection" else REACTION_BATCH_SIZE
    batch_size = getattr(item, "batch_size", default)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise InvalidSubscriber(
            f"{source} ({name!r}): batch_size must be an integer of at least 1, got {batch_size!r}"
        )
    types = getattr(item, "event_types", None)
    if types is not None:
        if isinstance(types, str) or not all(isinstance(t, str) and t for t in types):
            raise InvalidSubscriber(
                f"{source} ({name!r}): event_types must be a collection of event type names"
            )
        types = tuple(sorted(set(types)))
    ordering, concurrency, intake_limit = _stream_settings(item, kind, name, source)
    timeout = getattr(item, "handle_timeout_seconds", None) if kind == "reaction" else None
    if timeout is not None and (
        not isinstance(timeout, int | float)
        or isinstance(timeout, bool)
        or not (0 < timeout < math.inf)
    ):
        raise InvalidSubscriber(
            f"{source} ({name!r}): handle_timeout_seconds must be a positive number of seconds,"
            f" got {timeout!r}"
        )
    return Registered(
        name=name,
        kind=kind,
        subscriber=item,
        batch_size=batch_size,
        event_types=types,
        start_at_head=bool(getattr(item, "start_at_head", False)),
        source=source,
        ordering=ordering,
        concurrency=concurrency,
        intake_limit=intake_limit,
        handle_timeout_seconds=float(timeout) if timeout is not None else None,
    )


def _stream_settings(item: object, kind: Kind, name: str, source: str) -> tuple[Ordering, int, int]:
    """``ordering``, ``concurrency`` and ``intake_limit``, checked (reactions only)."""
    ordering = getattr(item, "ordering", "global")
    if ordering not in ORDERINGS:
        raise InvalidSubscriber(
            f"{source} ({name!r}): ordering must be one of {', '.join(map(repr, ORDERINGS))},"
            f" got {ordering!r}"
        )
    if kind == "projection" and ordering != "global":
        raise InvalidSubscriber(
            f"{source} ({name!r}): only a Reaction may declare ordering = 'stream'; a"
            " projection applies every event in global order"
        )
    values: list[int] = []
    for attribute, default in (
        ("concurrency", REACTION_CONCURRENCY),
        ("intake_limit", INTAKE_LIMIT),
    ):
        value = getattr(item, attribute, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidSubscriber(
                f"{source} ({name!r}): {attribute} must be an integer of at least 1, got {value!r}"
            )
        if value != default and ordering != "stream":
            raise InvalidSubscriber(
                f"{source} ({name!r}): {attribute} applies only with ordering = 'stream'"
            )
        values.append(value)
    resolved: Ordering = "stream" if ordering == "stream" else "global"
    return resolved, values[0], values[1]


def build_registry(items: Iterable[str | object]) -> SubscriberRegistry:
    """A registry from dotted paths (to a class or an instance) or from objects."""
    entries: list[Registered] = []
    for item in items:
        source = item if isinstance(item, str) else repr(item)
        if isinstance(item, str):
            try:
                item = import_string(item)
            except ImportError as exc:
                raise InvalidSubscriber(f"Cannot import subscriber {source!r}: {exc}") from exc
        entries.append(describe(item, source))
    return SubscriberRegistry(entries)


def load_registry() -> SubscriberRegistry:
    """The registry from ``options().subscribers`` (``EVENTDESK_SUBSCRIBERS``)."""
    return build_registry(options().subscribers)


@functools.cache
def _configured(paths: tuple[str, ...]) -> SubscriberRegistry | None:
    try:
        return build_registry(paths)
    except ImproperlyConfigured:
        return None


def configured_registry() -> SubscriberRegistry | None:
    """The registry of ``options().subscribers``, built once per configuration; None when
    that configuration is broken (the console still shows what it can)."""
    return _configured(options().subscribers)


def handled_event_types(name: str) -> tuple[str, ...] | None:
    """The event types subscriber ``name`` handles; None when it handles every type.

    A subscriber this process does not configure is taken to handle every type, as a
    subscriber without ``event_types`` does: counts then include every event, as before.
    """
    registry = configured_registry()
    entry = registry.get(name) if registry else None
    return entry.event_types if entry else None
