"""The rebuild's transactions write to its schema and nowhere else.

``search_path`` routes the projection's unqualified table names to the new tables; it
cannot stop a write to an undeclared table or a schema-qualified one. The role can:
``SET LOCAL ROLE`` to a role that may write only in the rebuild's schema (it reads
everything, through ``pg_read_all_data``), so PostgreSQL refuses any other write.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DatabaseError, connection

from subscribers.models import Rebuild
from subscribers.rebuilds.definition import qi


@contextmanager
def routed(rebuild: Rebuild) -> Iterator[None]:
    """Inside the open transaction: the rebuild's schema first on the path, its role on."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('search_path'), current_setting('role'),"
            " set_config('search_path', %(path)s, true), set_config('role', %(role)s, true)",
            {
                "path": f"{qi(rebuild.schema)}, " + _live_path(rebuild),
                "role": rebuild.role_name,
            },
        )
        path, role = cursor.fetchone()[:2]
    try:
        yield
    finally:
        # An aborted transaction rolls back, and its settings with it.
        with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('role', %(role)s, true),"
                " set_config('search_path', %(path)s, true)",
                {"role": role, "path": path},
            )


def _live_path(rebuild: Rebuild) -> str:
    schemas = dict.fromkeys(str(t["schema"]) for t in rebuild.tables)
    return ", ".join([*(qi(s) for s in schemas), "pg_catalog"])


_DENIED = re.compile(r'permission denied for (?:table|relation|sequence) "?([^"\s]+)"?')


def denied_table(error: str) -> str | None:
    """The table the guard refused a write to, when ``error`` (a failure's text) is that
    refusal."""
    match = _DENIED.search(error)
    return match.group(1) if match else None
