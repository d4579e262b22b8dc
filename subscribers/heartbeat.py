"""Worker heartbeats: each ``run_subscribers`` process says, every interval, that it is
alive, which subscribers it runs and what it is doing now.

The worker writes its row from one place, a small thread (:class:`Heartbeat`); the
console, the diagnosis and the metrics read them with :func:`workers`. A worker whose
last beat is older than ``GONE_AFTER_INTERVALS`` of its own interval is *gone*: killed,
frozen or cut off from the database. Its leases are then held by nobody alive.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import InterfaceError, OperationalError, connection, connections
from django.utils import timezone

from subscribers import sql
from subscribers.connection import discard_connection
from subscribers.json_form import attributes

logger = logging.getLogger("eventdesk.heartbeat")

#: A worker silent for this many of its own intervals is shown as gone.
GONE_AFTER_INTERVALS = 3
#: Rows of workers silent for longer than this are pruned.
KEEP_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Doing:
    """One event a worker is working on now: for which subscriber, since when, which attempt."""

    subscriber: str
    event_id: uuid.UUID | None
    since: datetime
    attempt: int

    def as_json(self) -> dict[str, Any]:
        return {
            "subscriber": self.subscriber,
            "event_id": str(self.event_id) if self.event_id else None,
            "since": self.since.isoformat(),
            "attempt": self.attempt,
        }


@dataclass(frozen=True)
class WorkerInfo:
    """A worker as its heartbeat row describes it."""

    worker_id: str
    host: str
    pid: int
    started_at: datetime
    last_seen_at: datetime
    interval_seconds: float
    subscribers: tuple[str, ...]
    doing: tuple[dict[str, Any], ...]
    stopped_at: datetime | None
    #: Its last beat is recent and it has not stopped.
    live: bool
    #: Seconds since its last beat.
    silent_seconds: float
    #: Whether its wake-ups (LISTEN/NOTIFY) arrive: None when not known yet (or it does
    #: not listen); False when it only polls, every ``interval_seconds``.
    wakeups_working: bool | None = None

    @property
    def wakeups_text(self) -> str:
        """The words for the diagnosis when its wake-ups do not arrive, else ""."""
        if self.wakeups_working is not False or not self.live:
            return ""
        return f"wake-ups are not arriving; polling every {self.interval_seconds:g} s"

    @property
    def state(self) -> str:
        """``live``, ``stopped`` (a clean shutdown) or ``gone`` (it stopped beating)."""
        if self.live:
            return "live"
        return "stopped" if self.stopped_at is not None else "gone"

    def as_json(self) -> dict[str, Any]:
        """The JSON form the REST API, the MCP tool and the CLI show."""
        return {
            **attributes(self, "worker_id", "host", "pid", "state"),
            "started_at": self.started_at.isoformat(),
            "last_seen_at": self.last_seen_at.isoformat(),
            "silent_seconds": round(self.silent_seconds, 3),
            "subscribers": list(self.subscribers),
            "doing": list(self.doing),
            "wakeups_working": self.wakeups_working,
            "wakeups": self.wakeups_text,
        }


def workers(*, live_only: bool = False) -> list[WorkerInfo]:
    """Every worker seen in the last day (``live_only``: those beating now), live ones
    first, then by last beat."""
    with connection.cursor() as cursor:
        cursor.execute(sql.WORKERS, {"intervals": GONE_AFTER_INTERVALS, "live_only": live_only})
        rows = cursor.fetchall()
    return [
        WorkerInfo(
            worker_id=row[0],
            host=row[1],
            pid=int(row[2]),
            started_at=row[3],
            last_seen_at=row[4],
            interval_seconds=float(row[5]),
            subscribers=tuple(_json(row[6])),
            doing=tuple(_json(row[7])),
            stopped_at=row[8],
            live=bool(row[9]),
            silent_seconds=float(row[10]),
            wakeups_working=row[11],
        )
        for row in rows
    ]


def live_workers() -> list[WorkerInfo]:
    """The workers beating now (chosen by the database: the gone and stopped ones of the
    last day are not even sent)."""
    return workers(live_only=True)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


class Heartbeat:
    """Beats for one worker every ``interval`` seconds until ``stop`` is set, then
    records the clean stop. Database errors are logged and the next beat tries again:
    a worker that cannot beat is shown as gone, which is the truth."""

    def __init__(
        self,
        worker_id: str,
        subscribers: list[str],
        doing: Callable[[], list[Doing]],
        stop: threading.Event,
        interval: float,
        wakeups: Callable[[], bool | None] = lambda: None,
    ) -> None:
        """``wakeups``: whether the worker's wake-ups arrive now (see WakeupCheck)."""
        self.wakeups = wakeups
        self.worker_id = worker_id
        self.subscribers = subscribers
        self.doing = doing
        self.stop = stop
        self.interval = interval
        self.started_at = timezone.now()
        self._beats = 0
        self._poked = threading.Event()

    def poke(self) -> None:
        """Beat now rather than at the end of the interval (what it reports changed)."""
        self._poked.set()

    def run(self) -> None:
        """The thread's body: beat, wait, beat... then say it stopped."""
        try:
            while True:
                self._safely(self.beat)
                if self._wait():
                    break
            self._safely(self.say_stopped)
        finally:
            connections.close_all()

    def _wait(self) -> bool:
        """Until the next beat is due or it is poked; True when the worker stops."""
        deadline = time.monotonic() + self.interval
        while not self._poked.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if self.stop.wait(min(0.25, remaining)):
                return True
        self._poked.clear()
        return self.stop.is_set()

    def beat(self) -> None:
        """Write this worker's row now."""
        doing = [item.as_json() for item in self.doing()]
        with connection.cursor() as cursor:
            cursor.execute(
                sql.BEAT,
                {
                    "worker_id": self.worker_id,
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                    "started_at": self.started_at,
                    "interval": self.interval,
                    "subscribers": json.dumps(self.subscribers),
                    "doing": json.dumps(doing),
                    "wakeups_working": self.wakeups(),
                },
            )
            if self._beats % 100 == 0:
                cursor.execute(sql.PRUNE_HEARTBEATS, {"keep": KEEP_SECONDS})
        self._beats += 1

    def say_stopped(self) -> None:
        """Mark this worker as stopped cleanly (not gone)."""
        with connection.cursor() as cursor:
            cursor.execute(sql.STOP_BEATING, {"worker_id": self.worker_id})

    def _safely(self, step: Callable[[], None]) -> None:
        try:
            step()
        except (OperationalError, InterfaceError) as exc:
            logger.warning("worker %s could not beat: %s", self.worker_id, exc)
            discard_connection()


def leased_reactions(worker_id: str, event_types: dict[str, list[str]]) -> list[Doing]:
    """What the global-order reactions leased by ``worker_id`` are handling now (from the
    bookmarks: the lease is the only record of a claim in flight)."""
    with connection.cursor() as cursor:
        cursor.execute(
            sql.LEASED_BOOKMARKS, {"worker_id": worker_id, "types": json.dumps(event_types)}
        )
        return [
            Doing(subscriber=row[0], event_id=row[3], since=row[2], attempt=int(row[1]) + 1)
            for row in cursor.fetchall()
        ]
