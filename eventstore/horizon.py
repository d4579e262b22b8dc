"""Who holds the horizon back.

Readers see only transactions older than every one still in flight, cluster-wide.
A transaction left open (an idle psql session, a stuck job) therefore stalls
every subscriber; this names it, so an operator can find and end it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connections

from eventstore import sql

# The oldest transactions that hold a transaction id: the first one is the horizon. One
# exempted from it (a rebuild's batch: eventdesk_horizon()) holds no reader back.
HOLDERS = """
SELECT pid, coalesce(datname, ''), coalesce(usename, ''), coalesce(application_name, ''),
       coalesce(state, ''), xact_start, backend_xid::text::bigint,
       extract(epoch FROM clock_timestamp() - xact_start)::float8,
       left(coalesce(query, ''), 200)
FROM pg_stat_activity
WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
  AND xact_start < clock_timestamp() - make_interval(secs => %(min_age)s)
  AND pid NOT IN (SELECT l.pid FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted
                  AND (l.classid, l.objid, l.objsubid) = (1162119258, 1, 2))
ORDER BY age(backend_xid) DESC
LIMIT %(limit)s
"""


@dataclass(frozen=True)
class HorizonHolder:
    """A backend whose open transaction keeps newer events invisible to readers."""

    pid: int
    database: str
    user: str
    application: str
    state: str
    transaction_started: datetime
    transaction_id: int
    open_seconds: float
    query: str

    def __str__(self) -> str:
        where = f"{self.user}@{self.database}" + (
            f" ({self.application})" if self.application else ""
        )
        return (
            f"pid {self.pid} {where}, {self.state}, transaction open {self.open_seconds:.0f}s: "
            f"{self.query}"
        )


def horizon_holders(
    min_age_seconds: float = 5.0, limit: int = 5, using: str = "default"
) -> list[HorizonHolder]:
    """Transactions open longer than ``min_age_seconds`` that hold an xid, oldest first."""
    with connections[using].cursor() as cursor:
        cursor.execute(HOLDERS, {"min_age": min_age_seconds, "limit": limit})
        return [HorizonHolder(*row) for row in cursor.fetchall()]


def exempt_from_horizon(using: str = "default") -> None:
    """Exempt the open transaction from the horizon: no reader waits for it, and it can
    append no event (the database refuses it). Its first statements, in the outermost
    ``atomic()``: the database refuses them after a query, or once the transaction has an
    xid; and a savepoint rolled back would end the exemption while the transaction goes
    on."""
    conn = connections[using]
    if not conn.in_atomic_block or conn.savepoint_ids:
        raise RuntimeError(
            "a transaction is exempted from the horizon first thing in its outermost atomic()"
        )
    with conn.cursor() as cursor:
        # One round trip: without parameters, the statements go in one simple query, in
        # order (psycopg never prepares a query of several statements).
        cursor.execute(";\n".join(sql.EXEMPT_FROM_HORIZON))
