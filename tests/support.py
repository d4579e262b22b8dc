"""Helpers for the dismissal tests: events through the real store, bookmarks, operators."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType

from eventstore.postgres import PostgresEventStore
from eventstore.types import NewEvent, RecordedEvent, StreamAppend
from reactions_admin.handler import DECISION_STREAM
from subscribers.models import Bookmark


def append_events(
    count: int, stream: str = "orders-1", data: dict[str, Any] | None = None
) -> list[RecordedEvent]:
    """``count`` events appended in one transaction through the PostgreSQL store."""
    events = [NewEvent("OrderPlaced", data or {"n": n}) for n in range(count)]
    return PostgresEventStore().append_streams([StreamAppend(stream, events)])


def wait_until_visible(events: list[RecordedEvent], timeout: float = 20.0) -> list[RecordedEvent]:
    """Wait until readers see ``events``: the horizon is cluster-wide, so a transaction
    open in another database on the same server (a concurrent test run) holds it back."""
    store, deadline = PostgresEventStore(), time.monotonic() + timeout
    while store.head() < events[-1].cursor:
        assert time.monotonic() < deadline, "the events never became visible"
        time.sleep(0.05)
    return events


def wedged_reaction(name: str, before: RecordedEvent | None, failing: RecordedEvent) -> Bookmark:
    """A reaction wedged on ``failing``, its bookmark on ``before`` (or the start)."""
    return Bookmark.objects.create(
        subscriber_name=name,
        kind=Bookmark.Kind.REACTION,
        last_transaction_id=before.transaction_id if before else 0,
        last_position=before.position if before else 0,
        status=Bookmark.Status.WEDGED,
        attempts=5,
        failing_event_id=failing.event_id,
        last_error="ValueError: poison",
        last_traceback="Traceback ...",
        lease_owner="worker-1",
    )


def operator(username: str = "operator", *, permitted: bool = True, staff: bool = True) -> User:
    """A user who may log into the admin and, if ``permitted``, dismiss events."""
    user = User.objects.create_user(username, password="pw-for-tests", is_staff=staff)
    ContentType.objects.clear_cache()
    view = Permission.objects.get(codename="view_bookmark", content_type__app_label="subscribers")
    change = Permission.objects.get(
        codename="change_bookmark", content_type__app_label="subscribers"
    )
    user.user_permissions.add(view, change)
    if permitted:
        user.user_permissions.add(
            Permission.objects.get(
                codename="dismiss_event", content_type__app_label="reactions_admin"
            )
        )
    return User.objects.get(pk=user.pk)  # fresh: no stale permission cache


def decisions() -> list[RecordedEvent]:
    """Every dismissal decision recorded so far, oldest first."""
    return PostgresEventStore().read_stream(DECISION_STREAM)


@contextmanager
def served_asgi() -> Iterator[str]:
    """A fresh ``config.asgi`` application (Django and /mcp) under uvicorn on a free port,
    lifespan included; yields the base URL. The server stops when the block ends."""
    import socket
    import threading

    import uvicorn

    from config.asgi import build_application

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            build_application(), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
