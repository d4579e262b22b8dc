"""Eventdesk behind a connection pooler (PgBouncer): the one setting that says so, what
it implies for the connection, and the words for the failure when it was not said.

``EVENTDESK_DB_POOLER=transaction`` says ``DATABASE_URL`` goes through a
transaction-mode pooler. A server connection then changes between transactions, so
nothing may live in the session: psycopg's named prepared statements do (even when
prepared inside a transaction), and only PgBouncer 1.21+ with
``max_prepared_statements`` carries them. The setting therefore turns preparation off.
LISTEN cannot go through such a pooler either: the worker LISTENs on
``EVENTDESK_LISTEN_DATABASE_URL`` (see ``subscribers/listener.py``).
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from psycopg_pool import ConnectionPool

logger = logging.getLogger("eventdesk.pooler")

#: The values ``EVENTDESK_DB_POOLER`` takes: none (a direct connection, the default),
#: session (a session-mode pool: everything works) or transaction.
POOLER_MODES = ("none", "session", "transaction")

#: psycopg's automatic preparation: a statement run this many times on one connection is
#: prepared (the append benchmark: about 2x). Behind a transaction pooler: never.
PREPARE_THRESHOLD = 5

#: SQLSTATEs of a prepared statement the server session does not have (26000), or already
#: has (42P05): the connection went through a pooler that changed the server session.
PREPARED_STATEMENT_SQLSTATES = frozenset({"26000", "42P05"})

#: psycopg_pool's reconnect_timeout for Django's pool: one attempt cycle (tries 1 s apart)
#: lasts this long, then the next request that finds the pool empty starts another.
RECONNECT_TIMEOUT_SECONDS = 2.0

PREPARED_STATEMENT_HINT = (
    "a prepared statement was missing from (or already in) the server session: "
    "DATABASE_URL goes through a transaction-mode pooler (PgBouncer pool_mode = "
    "transaction before 1.21, or without max_prepared_statements), which cannot carry "
    "psycopg's prepared statements. Set EVENTDESK_DB_POOLER=transaction (it turns "
    "preparation off and says LISTEN needs EVENTDESK_LISTEN_DATABASE_URL)."
)


def pooler_mode(raw: str | None) -> str:
    """``EVENTDESK_DB_POOLER`` checked: one of ``POOLER_MODES`` ("" is none)."""
    mode = (raw or "none").strip().lower()
    if mode not in POOLER_MODES:
        raise ImproperlyConfigured(
            f"EVENTDESK_DB_POOLER={raw!r}: must be one of {', '.join(POOLER_MODES)}"
        )
    return mode


def apply_pooler(database: dict[str, Any], mode: str) -> None:
    """Set a DATABASES entry (its OPTIONS included) for ``mode``.

    Server-side binding stays on: its statements are unnamed, which any pooler carries.
    A prepare_threshold given in DATABASE_URL is kept, unless it contradicts the mode.
    Behind a transaction pooler, Django's server-side cursors (``.iterator()``, WITH HOLD
    in autocommit) are off too, as Django's documentation says for such poolers.
    """
    options: dict[str, Any] = database.setdefault("OPTIONS", {})
    options.setdefault("server_side_binding", True)
    if mode != "transaction":
        options.setdefault("prepare_threshold", PREPARE_THRESHOLD)
        return
    if options.get("prepare_threshold") is not None:
        raise ImproperlyConfigured(
            "DATABASE_URL asks for prepare_threshold="
            f"{options['prepare_threshold']} but EVENTDESK_DB_POOLER=transaction: a "
            "transaction-mode pooler cannot carry prepared statements (drop the parameter)"
        )
    options["prepare_threshold"] = None
    database["DISABLE_SERVER_SIDE_CURSORS"] = True


def prepared_statement_failure(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is a prepared statement the
    server session does not know: the sign of a transaction pooler nobody declared."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if getattr(seen, "sqlstate", None) in PREPARED_STATEMENT_SQLSTATES:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def reconnect_again(pool: ConnectionPool[Any]) -> None:
    """psycopg_pool's ``reconnect_failed``: an attempt cycle gave up (the database is still
    down); start the next one now rather than when some request next finds the pool empty.

    A request already waiting for a connection would otherwise wait out its whole pool
    timeout with no attempt under way, although the database came back meanwhile. With
    this, while the database is down the pool tries about once a second, so the next
    try after it is back comes within a second.
    """
    pool.check()  # public API: drops dead idle connections, grows the pool if it can


def explain_request_failure(sender: Any, request: Any = None, **kwargs: Any) -> None:
    """``got_request_exception``: when a console request failed on a prepared statement,
    log what to set (the traceback alone names psycopg's ``_pg3_0``, not the cause)."""
    import sys

    exc = sys.exc_info()[1]
    if exc is not None and prepared_statement_failure(exc):
        logger.error("%s", PREPARED_STATEMENT_HINT)
