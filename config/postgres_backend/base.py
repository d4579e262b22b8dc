"""Django's PostgreSQL backend, checking a pooled connection before handing it out.

After a server restart (or a PgBouncer restart) every idle connection in the pool is
dead. psycopg_pool's own ``check`` tries them one at a time with a pause that grows
between tries (1 s, 2 s...), so a request could spend its whole pool timeout on dead
connections and answer 503 although the database is back. Here the first dead one
makes the pool check all its idle connections at once (``ConnectionPool.check``), and
the request takes a fresh connection without pausing.
"""

from __future__ import annotations

from typing import Any

import psycopg
from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        conn = super().get_new_connection(conn_params)
        pool: ConnectionPool[Any] | None = getattr(self, "pool", None)
        if pool is None:
            return conn
        try:
            ConnectionPool.check_connection(conn)
        except psycopg.Error:
            pool.putconn(conn)  # broken: the pool closes it and opens another
            pool.check()  # every other idle connection, at once
            conn = super().get_new_connection(conn_params)
        return conn
