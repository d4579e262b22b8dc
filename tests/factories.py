"""The one place tests build events and appends, and the rows that stand around them.

Events go through the real PostgreSQL store (``append``, ``append_many``,
``append_events``, ``append_mixed``), or, on a server that is not Django's, through
plain SQL (``insert_mixed``). ``Appenders`` are threads whose transactions overlap and
commit out of order, some rolled back. ``wedged_reaction`` (``wedged_mailer``) and
``operator`` make the bookmark and the user a dismissal needs; ``viewer`` a user who
only reads the console.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction

from eventstore import NewEvent, RecordedEvent, StreamAppend
from eventstore.postgres import PostgresEventStore
from subscribers.models import Bookmark
from tests.support import wait_until_visible

#: How many distinct keys the mixed events spread their amounts over.
KEYS = 40


def append_to(stream: str, events: list[NewEvent]) -> list[RecordedEvent]:
    """``events`` appended to ``stream`` in one transaction through the PostgreSQL store."""
    return PostgresEventStore().append_streams([StreamAppend(stream, events)])


def append(stream: str, *types: str, **data: Any) -> list[RecordedEvent]:
    """One event of each of ``types`` on ``stream``, each with ``data``, in one append."""
    return append_to(stream, [NewEvent(kind, dict(data)) for kind in types])


def append_many(count: int, kind: str = "Tick", per_append: int = 10) -> list[RecordedEvent]:
    """``count`` events of ``kind`` (``amount`` 0, 1, ...), ``per_append`` to a stream."""
    recorded: list[RecordedEvent] = []
    for start in range(0, count, per_append):
        events = [
            NewEvent(kind, {"amount": n}) for n in range(start, min(count, start + per_append))
        ]
        recorded += append_to(f"s-{start}", events)
    return recorded


def append_events(
    count: int, stream: str = "orders-1", data: dict[str, Any] | None = None
) -> list[RecordedEvent]:
    """``count`` events appended in one transaction through the PostgreSQL store."""
    return append_to(stream, [NewEvent("OrderPlaced", data or {"n": n}) for n in range(count)])


def mixed_events(rng: random.Random, count: int, order_every: int = 5) -> list[NewEvent]:
    """Ticks with a key and an amount, and every ``order_every``-th one an Order."""
    return [
        NewEvent(
            "Order" if rng.randrange(order_every) == 0 else "Tick",
            {"key": f"k{rng.randrange(KEYS)}", "amount": rng.randrange(1, 1000)},
        )
        for _ in range(count)
    ]


def append_mixed(rng: random.Random, count: int, stream: str) -> list[RecordedEvent]:
    """``count`` mixed events (see ``mixed_events``) on ``stream``, in one append."""
    return append_to(stream, mixed_events(rng, count))


#: The mixed events in one statement, for a server the store is not connected to.
INSERT_MIXED = """
INSERT INTO events (event_id, stream_id, stream_version, event_type, data, metadata)
SELECT gen_random_uuid(), %(stream)s, g,
       CASE WHEN g %% 5 = 0 THEN 'Order' ELSE 'Tick' END,
       jsonb_build_object('key', 'k' || (g %% 40), 'amount', g %% 997), '{}'
FROM generate_series(1, %(count)s) AS g
"""


def insert_mixed(conn: psycopg.Connection[Any], stream: str, count: int) -> None:
    """``count`` mixed events on ``stream`` through ``conn`` (a server other than Django's),
    then the notification the store would have sent."""
    conn.execute(INSERT_MIXED, {"stream": stream, "count": count})
    conn.execute("SELECT pg_notify('eventdesk_events', '')")


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


def wedged_mailer(count: int = 3, **append_options: Any) -> list[RecordedEvent]:
    """``count`` events every reader sees (``append_events``), and the reaction "mailer"
    wedged on the second, its bookmark on the first: what a dismissal acts on."""
    events = wait_until_visible(append_events(count, **append_options))
    wedged_reaction("mailer", events[0], failing=events[1])
    return events


def operator(
    username: str = "operator",
    *,
    permitted: bool = True,
    staff: bool = True,
    operates: bool = False,
) -> User:
    """A user who may log into the admin and, if ``permitted``, dismiss events; if
    ``operates``, operate subscribers (``reactions_admin.operate_subscriber``)."""
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
    if operates:
        user.user_permissions.add(
            Permission.objects.get(
                codename="operate_subscriber", content_type__app_label="reactions_admin"
            )
        )
    return User.objects.get(pk=user.pk)  # fresh: no stale permission cache


def viewer(username: str = "viewer") -> User:
    """A staff user holding only ``reactions_admin.view_console``."""
    user = User.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(codename="view_console", content_type__app_label="reactions_admin")
    )
    return User.objects.get(pk=user.pk)  # fresh: no stale permission cache


class Rollback(Exception):
    """Raised inside a transaction to roll it back on purpose."""


class Appenders:
    """``count`` threads sharing ``events`` appends between them; each thread has its own
    Django connection, so their transactions overlap and commit out of order."""

    def __init__(
        self,
        *,
        count: int,
        events: int,
        prefix: str,
        max_batch: int = 5,
        max_delay: float = 0.004,
        rollback_rate: float = 0.1,
        data: dict[str, Any] | None = None,
    ) -> None:
        self.count, self.events, self.prefix = count, events, prefix
        self.max_batch, self.max_delay, self.rollback_rate = max_batch, max_delay, rollback_rate
        self.data = data or {}
        self.committed: set[uuid.UUID] = set()
        self.rolled_back: set[uuid.UUID] = set()
        self.errors: list[BaseException] = []
        self._attempted = 0
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._append, args=(index,), daemon=True)
            for index in range(count)
        ]

    def start(self) -> Appenders:
        for thread in self._threads:
            thread.start()
        return self

    def alive(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def join(self, timeout: float = 300) -> None:
        for thread in self._threads:
            thread.join(timeout)

    def _take(self, rng: random.Random) -> int:
        with self._lock:
            count = min(rng.randint(1, self.max_batch), self.events - self._attempted)
            self._attempted += count
            return count

    def _append(self, index: int) -> None:
        rng = random.Random(index)
        store = PostgresEventStore()
        try:
            while count := self._take(rng):
                events = [NewEvent("Tick", {**self.data, "a": index}) for _ in range(count)]
                ids = {event.event_id for event in events}
                try:
                    with transaction.atomic():
                        store.append_streams([StreamAppend(f"{self.prefix}-{index}", events)])
                        threading.Event().wait(rng.random() * self.max_delay)
                        if rng.random() < self.rollback_rate:
                            raise Rollback
                except Rollback:
                    with self._lock:
                        self.rolled_back.update(ids)
                    continue
                with self._lock:
                    self.committed.update(ids)
        except BaseException as exc:  # surfaced by the test's assertion on .errors
            self.errors.append(exc)
        finally:
            connection.close()


class Feed:
    """``total`` events appended from a thread of its own (its own Django connection), in
    random chunks at random moments, while a test kills workers: ``chunk(rng, left)``
    appends at most ``left`` events and says how many; a pause of up to ``pause`` seconds
    follows each chunk. ``failures`` keeps what went wrong, for the test to assert on."""

    def __init__(
        self, total: int, seed: int, chunk: Callable[[random.Random, int], int], pause: float
    ) -> None:
        self.total, self.appended = total, 0
        self.failures: list[BaseException] = []
        self._rng, self._chunk, self._pause = random.Random(seed), chunk, pause
        self._thread = threading.Thread(target=self._append)

    def start(self) -> Feed:
        self._thread.start()
        return self

    def alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _append(self) -> None:
        try:
            while self.appended < self.total:
                self.appended += self._chunk(self._rng, self.total - self.appended)
                time.sleep(self._rng.random() * self._pause)
        except BaseException as exc:  # surfaced by the test's assertion on .failures
            self.failures.append(exc)
        finally:
            connection.close()


def jobs(stream: str, count: int = 1, **data: Any) -> list[RecordedEvent]:
    """Append ``count`` Job events to ``stream`` in one transaction (a stream-ordered
    reaction's work: see ``StreamJobs`` in tests/subscribers.py)."""
    events = [NewEvent("Job", {"n": n, **data}) for n in range(count)]
    return PostgresEventStore().append_streams([StreamAppend(stream, events)])
