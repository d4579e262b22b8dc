"""The benchmark database: ``eventdesk_bench`` on the embedded server, never ``eventdesk``.

The server is started (if needed) through ``config.embedded_pg``; Django is then
pointed at the benchmark database with ``DATABASE_URL`` before it is set up, so
every Eventdesk code path (event store, worker, dismissal) runs against it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import psycopg

from config import embedded_pg

BENCH_DATABASE = "eventdesk_bench"
#: Backends of the harness itself carry this name; the worker's carry WORKER_APP.
HARNESS_APP = "eventdesk-bench-harness"
WORKER_APP = "eventdesk-bench-worker"


#: ``--isolated``: a private cluster of the same embedded binaries, so that no other
#: database's transactions hold back the (cluster-wide) horizon during a measurement.
ISOLATED_BASE = embedded_pg.project_root() / ".data" / "bench-cluster"


class BenchDatabase:
    """Where the benchmark database lives and how to reach it."""

    def __init__(self, name: str = BENCH_DATABASE, *, isolated: bool = False) -> None:
        if name in {embedded_pg.DATABASE, "postgres"} or name.startswith("test_"):
            raise ValueError(f"refusing to benchmark in the database {name!r}")
        self.isolated = isolated
        if isolated:
            ISOLATED_BASE.mkdir(mode=0o755, parents=True, exist_ok=True)
            layout = embedded_pg.ensure_running(embedded_pg.resolve_layout(ISOLATED_BASE))
        else:
            layout = embedded_pg.ensure_running()
        self.layout = layout
        self.name = name
        self.host = str(layout.socket_dir)
        self.port = embedded_pg.PORT
        self.user = embedded_pg.SUPERUSER

    def url(self, application_name: str = HARNESS_APP) -> str:
        """A ``DATABASE_URL`` for Eventdesk (``config.database_url`` reads %2F as a socket dir)."""
        host = quote(self.host, safe="")
        return (
            f"postgresql://{self.user}@{host}:{self.port}/{self.name}"
            f"?application_name={application_name}"
        )

    def connect(self, *, autocommit: bool = False, dbname: str | None = None) -> psycopg.Connection:
        """A plain psycopg connection (the raw loops, the samplers, the setup)."""
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            dbname=dbname or self.name,
            autocommit=autocommit,
            application_name=HARNESS_APP,
        )

    def create(self, *, fresh: bool = False) -> None:
        """Create the database (dropping it first when ``fresh``)."""
        with self.connect(autocommit=True, dbname="postgres") as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.name,)
            ).fetchone()
            if exists and fresh:
                conn.execute(f'DROP DATABASE "{self.name}" WITH (FORCE)')
                exists = None
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.name}"')

    def quiet_autovacuum(self) -> None:
        """Autovacuum off on the private cluster for the run (the harness vacuums before
        each measurement instead, so no autovacuum lands in the middle of one)."""
        if self.isolated:
            with self.connect(autocommit=True, dbname="postgres") as conn:
                conn.execute("ALTER SYSTEM SET autovacuum = off")
                conn.execute("SELECT pg_reload_conf()")

    def point_django_here(self) -> None:
        """Environment for this process and the workers it starts (before django.setup())."""
        # Measured as deployed: DEBUG off (with it, Django records and formats every query).
        os.environ.setdefault("DJANGO_DEBUG", "0")
        os.environ["DATABASE_URL"] = self.url(HARNESS_APP)
        os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"

    def worker_env(self, subscribers: list[str], **extra: str) -> dict[str, str]:
        """The environment of a ``run_subscribers`` process working on this database."""
        env = dict(os.environ)
        env.update(
            DATABASE_URL=self.url(WORKER_APP),
            DJANGO_SETTINGS_MODULE="benchmarks.settings",
            EVENTDESK_SUBSCRIBERS=",".join(subscribers),
            **extra,
        )
        return env

    def stop_isolated(self) -> None:
        """Stop the private cluster of ``--isolated`` (the shared server is left running)."""
        if self.isolated:
            with self.connect(autocommit=True, dbname="postgres") as conn:
                conn.execute("ALTER SYSTEM RESET autovacuum")
            embedded_pg.stop(self.layout)

    def server_version(self) -> str:
        with self.connect(autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"


@contextmanager
def bench_connection(
    db: BenchDatabase, *, autocommit: bool = False
) -> Iterator[psycopg.Connection]:
    conn = db.connect(autocommit=autocommit)
    try:
        yield conn
    finally:
        conn.close()


def reset_event_tables(db: BenchDatabase) -> None:
    """Empty the event store, bookmarks and read models (between scenarios)."""
    with db.connect(autocommit=True) as conn:
        conn.execute(
            "TRUNCATE events, projection_bookmarks, bench_type_counts, bench_stream_rows,"
            " bench_arrivals"
            " RESTART IDENTITY CASCADE"
        )
