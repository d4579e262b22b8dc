"""Wake-ups: LISTEN on a dedicated psycopg connection (never Django's)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import psycopg
from django.db import connection

from eventstore.sql import NOTIFY_CHANNEL

logger = logging.getLogger("eventdesk.listener")


def listener_connection_params() -> dict[str, Any]:
    """Connection parameters of Django's default database, for a plain psycopg connection."""
    params = dict(connection.get_connection_params())
    for django_only in ("cursor_factory", "context", "server_side_binding", "prepare_threshold"):
        params.pop(django_only, None)
    return params


class Backoff:
    """Delays that double from ``base`` up to ``cap``; ``reset`` after a success."""

    def __init__(self, base: float = 0.5, cap: float = 30.0) -> None:
        self.base, self.cap, self._next = base, cap, base

    def next(self) -> float:
        delay, self._next = self._next, min(self.cap, self._next * 2)
        return delay

    def reset(self) -> None:
        self._next = self.base


def listen(on_notify: Callable[[], None], stop: threading.Event) -> None:
    """Call ``on_notify`` for every notification until ``stop`` is set.

    A notification is a hint, not a guarantee (the loops poll anyway). After a
    lost connection it reconnects with backoff, LISTENs again and wakes the loops
    once, since whatever was appended meanwhile sent its NOTIFY to nobody.
    """
    backoff = Backoff()
    while not stop.is_set():
        try:
            with psycopg.connect(**listener_connection_params(), autocommit=True) as conn:
                conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                logger.debug("listening on %s", NOTIFY_CHANNEL)
                on_notify()
                backoff.reset()
                while not stop.is_set():
                    for _ in conn.notifies(timeout=0.5, stop_after=1):
                        on_notify()
        except psycopg.Error as exc:
            delay = backoff.next()
            logger.warning("listener connection lost (%s); reconnecting in %.1fs", exc, delay)
            stop.wait(delay)
