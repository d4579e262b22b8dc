"""Concurrent appenders for the out-of-order tests: threads that append random-size
batches, wait a random time before committing, and roll some back."""

from __future__ import annotations

import random
import threading
import uuid
from typing import Any

from django.db import connection, transaction

from eventstore import NewEvent, StreamAppend
from eventstore.postgres import PostgresEventStore


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
