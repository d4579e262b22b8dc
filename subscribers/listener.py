"""Wake-ups: LISTEN on a dedicated psycopg connection (never Django's), and the proof that
they arrive.

The connection is ``EVENTDESK_LISTEN_DATABASE_URL`` when set, else Django's default
database. A transaction-mode pooler (PgBouncer ``pool_mode = transaction``) accepts a
LISTEN and then hands the server connection to other clients: the notifications never
come back, silently. So the worker checks (:class:`WakeupCheck`): at start, after each
reconnection and every ``wakeup_check_seconds``, it sends a NOTIFY of its own through the
ordinary connection and waits for the listener to receive it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from config import database_url
from config.options import options
from eventstore.sql import NOTIFY_CHANNEL
from subscribers import sql
from subscribers.connection import discard_connection

logger = logging.getLogger("eventdesk.listener")

#: Reconnection delays stop growing here: once the database is back, the worker listens
#: again within about a second, whatever the length of the outage.
RECONNECT_CAP_SECONDS = 1.0
#: A check's NOTIFY travels in milliseconds; this much later it is lost.
CHECK_DEADLINE_SECONDS = 5.0
#: The payload of a check's NOTIFY starts with this (the events' own NOTIFY names their
#: event types as a JSON array; an empty one wakes every loop).
CHECK_PREFIX = "eventdesk-wakeup-check:"

_DJANGO_ONLY = ("cursor_factory", "context", "server_side_binding", "prepare_threshold", "pool")


def listener_connection_params() -> dict[str, Any]:
    """Connection parameters of Django's default database, for a plain psycopg connection."""
    params = dict(connection.get_connection_params())
    for django_only in _DJANGO_ONLY:
        params.pop(django_only, None)
    return params


def listen_connection_params() -> dict[str, Any]:
    """Where the worker LISTENs: ``EVENTDESK_LISTEN_DATABASE_URL``, else Django's database.

    Raises ``InvalidDatabaseUrl`` for a URL that is not a postgresql:// one.
    """
    url = options().listen_database_url
    if not url:
        return listener_connection_params()
    entry = database_url.parse(url)
    params: dict[str, Any] = {
        key: value for key, value in entry["OPTIONS"].items() if key not in _DJANGO_ONLY
    }
    params["dbname"] = entry["NAME"]
    for key, setting in (("user", "USER"), ("password", "PASSWORD"), ("host", "HOST")):
        if entry[setting]:
            params[key] = entry[setting]
    if entry["PORT"]:
        params["port"] = entry["PORT"]
    return params


class Backoff:
    """Delays that double from ``base`` up to ``cap``; ``reset`` after a success."""

    def __init__(self, base: float = 0.5, cap: float = RECONNECT_CAP_SECONDS) -> None:
        self.base, self.cap, self._next = base, cap, base

    def next(self) -> float:
        delay, self._next = self._next, min(self.cap, self._next * 2)
        return delay

    def reset(self) -> None:
        self._next = self.base


@dataclass
class WakeupCheck:
    """Whether a NOTIFY sent through the ordinary connection reaches the listener.

    ``working`` is None until the first check has concluded. A change is logged once
    (the cause and the setting to use when they stop arriving) and passed to
    ``on_change`` (the worker's gauge); the heartbeat reports ``working``.
    """

    interval: float
    poll_seconds: float
    deadline: float = CHECK_DEADLINE_SECONDS
    on_change: Callable[[bool], None] | None = None
    working: bool | None = None
    _token: str | None = field(default=None, repr=False)
    _sent_at: float = field(default=0.0, repr=False)
    _next_at: float = field(default=0.0, repr=False)

    def restart(self) -> None:
        """The listener (re)connected: check again now."""
        self._token, self._next_at = None, 0.0

    def tick(self) -> None:
        """Send a check when one is due; conclude one whose NOTIFY is overdue."""
        now = time.monotonic()
        if self._token is not None:
            if now - self._sent_at > self.deadline:
                self._conclude(False)
            return
        if now < self._next_at:
            return
        token = uuid.uuid4().hex
        try:
            # Django's connection: the one everything else uses (through the pooler, if any).
            with connection.cursor() as cursor:
                cursor.execute(sql.WAKE_CHECK, {"payload": CHECK_PREFIX + token})
        except (OperationalError, InterfaceError) as exc:
            logger.debug("could not send a wake-up check (%s)", exc)
            self._next_at = now + RECONNECT_CAP_SECONDS
            return
        finally:
            discard_connection()
        self._token, self._sent_at = token, now

    def received(self, payload: str) -> bool:
        """Note a notification; True when it was a check (this worker's or another's),
        not news of events."""
        if not payload.startswith(CHECK_PREFIX):
            return False
        if self._token is not None and payload == CHECK_PREFIX + self._token:
            self._conclude(True)
        return True

    def _conclude(self, arrived: bool) -> None:
        self._token, self._next_at = None, time.monotonic() + self.interval
        if arrived == self.working:
            return
        before, self.working = self.working, arrived
        if not arrived:
            logger.error("%s", self.failure_text())
        elif before is False:
            logger.warning("wake-ups arrive again: the worker's check NOTIFY reached it")
        if self.on_change is not None:
            self.on_change(arrived)

    def failure_text(self) -> str:
        """The log line: what is wrong, the likely cause, and the setting to use."""
        head = (
            f"wake-ups are not arriving; polling every {self.poll_seconds:g} s. A NOTIFY this "
            f"worker sent through DATABASE_URL did not reach its LISTEN connection within "
            f"{self.deadline:g} s."
        )
        if not options().listen_database_url:
            declared = getattr(settings, "EVENTDESK_DB_POOLER", "none") == "transaction"
            likely = "goes (EVENTDESK_DB_POOLER=transaction)" if declared else "most likely goes"
            return (
                f"{head} Cause: DATABASE_URL {likely} through a transaction-mode "
                "pooler (PgBouncer pool_mode = transaction), which cannot carry LISTEN. Set "
                "EVENTDESK_LISTEN_DATABASE_URL to a direct connection to PostgreSQL (or to a "
                "session-mode pool); see docs/pooler.md."
            )
        return (
            f"{head} Cause: EVENTDESK_LISTEN_DATABASE_URL does not reach the same database "
            "as DATABASE_URL directly: point it at that PostgreSQL server and database, "
            "directly or through a session-mode pool, never a transaction-mode one; see "
            "docs/pooler.md."
        )


def notified_types(payload: str) -> frozenset[str] | None:
    """The event types a NOTIFY's payload names, or None for "wake every loop": an empty
    payload (a wake-up of every loop, or an append of too many types to name), or one
    this version cannot read."""
    if not payload.startswith("["):
        return None
    try:
        types = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(types, list) or not all(isinstance(kind, str) for kind in types):
        return None
    return frozenset(types)


def listen(
    on_notify: Callable[[frozenset[str] | None], None],
    stop: threading.Event,
    check: WakeupCheck | None = None,
) -> None:
    """Call ``on_notify`` with the event types of every notification (None: wake every
    loop) until ``stop`` is set.

    A notification is a hint, not a guarantee (the loops poll anyway). After a lost
    connection it reconnects (delays capped at ``RECONNECT_CAP_SECONDS``), LISTENs again
    and wakes every loop once, since whatever was appended meanwhile sent its NOTIFY to
    nobody. With ``check``, it proves the wake-ups arrive (see :class:`WakeupCheck`).
    """
    params = listen_connection_params()  # a bad URL stops the worker at once, with its reason
    backoff = Backoff()
    try:
        while not stop.is_set():
            try:
                with psycopg.connect(**params, autocommit=True) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    logger.debug("listening on %s", NOTIFY_CHANNEL)
                    on_notify(None)
                    backoff.reset()
                    if check is not None:
                        check.restart()
                    while not stop.is_set():
                        if check is not None:
                            check.tick()
                        for notify in conn.notifies(timeout=0.25, stop_after=1):
                            if check is None or not check.received(notify.payload):
                                on_notify(notified_types(notify.payload))
            except psycopg.Error as exc:
                delay = backoff.next()
                logger.warning("listener connection lost (%s); reconnecting in %.1fs", exc, delay)
                stop.wait(delay)
    finally:
        discard_connection()
