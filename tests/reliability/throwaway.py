"""A throwaway embedded PostgreSQL of a test's own (the ``server`` fixture of this layer's
conftest.py): its URL, ``manage.py`` against it, a connection and its rows."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg

from config import embedded_pg
from config.embedded_pg import ServerLayout
from tests.support import ROOT


@contextmanager
def running_server(tmp: Path) -> Iterator[ServerLayout]:
    """A new embedded server whose project is ``tmp``/project, not migrated; stopped and
    removed when the block ends."""
    base = tmp / "project"
    base.mkdir()
    layout = embedded_pg.ensure_running(embedded_pg.resolve_layout(base))
    try:
        yield layout
    finally:
        embedded_pg.stop(layout)
        if layout.outside_tree:
            shutil.rmtree(layout.root, ignore_errors=True)


def database_url(layout: ServerLayout, application_name: str = "") -> str:
    """The ``DATABASE_URL`` of the throwaway server (through its unix socket)."""
    query = f"?application_name={application_name}" if application_name else ""
    return f"postgresql://postgres@{quote(str(layout.socket_dir), safe='')}:5432/eventdesk{query}"


def manage(env: dict[str, str], *args: str) -> str:
    """``manage.py`` with ``args`` in the environment ``env``; it must succeed: its output."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def db(layout: ServerLayout, **options: Any) -> psycopg.Connection[Any]:
    """A connection of its own to the throwaway server's database, in autocommit
    (``options``: more connection parameters)."""
    return psycopg.connect(
        host=str(layout.socket_dir), port=embedded_pg.PORT, user="postgres", dbname="eventdesk",
        autocommit=True, **options,
    )  # fmt: skip


def rows(layout: ServerLayout, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    """The rows ``query`` finds on the throwaway server."""
    with db(layout) as conn:
        return [tuple(row) for row in conn.execute(query, params).fetchall()]
