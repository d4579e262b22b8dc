"""A PostgreSQL backend that makes sure the embedded server runs before connecting.

Starting lazily (on the first connection, not at import) keeps commands that
never touch the database, such as ``pg_status`` and ``pg_stop``, from starting
a server, and lets a process reconnect after the server was restarted.
"""

from __future__ import annotations

from typing import Any

from config import embedded_pg
from config.postgres_backend import base


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        embedded_pg.ensure_running()
        return super().get_new_connection(conn_params)
