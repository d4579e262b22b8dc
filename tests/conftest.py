"""Fixtures shared by several layers. Every test that touches the database uses the real
PostgreSQL (the embedded server, or DATABASE_URL): pytest-django's test database.

Where things live: fixtures in the conftest.py of the layer that uses them (this one for
several layers); events and appends in tests/factories.py; waits, connections and reads
in tests/support.py; workers in tests/workers.py; the subscribers tests select by dotted
path in tests/subscribers.py and tests/reliability/subscribers.py.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.db import connection

from tests.pgbouncer import DEFAULT_BINARY, PgBouncer, make_pgbouncer, remove
from tests.subscribers import CREATE_APPLIED_TABLE, STREAM_JOBS, GatedReaction, StreamJobs
from tests.support import ROOT, free_port


@pytest.fixture
def applied_table(transactional_db: None) -> None:
    """An empty ``test_applied_events`` table (not a Django model: the flush leaves it)."""
    with connection.cursor() as cursor:
        cursor.execute(CREATE_APPLIED_TABLE)
    GatedReaction.reset()


@pytest.fixture
def stream_jobs_configured(settings: Any, transactional_db: None) -> None:
    """``StreamJobs`` the only subscriber configured, with fresh notes: a stream parks after
    two attempts, retried within 20 ms."""
    settings.EVENTDESK = {
        **settings.EVENTDESK,
        "subscribers": [STREAM_JOBS],
        "max_attempts": 2,
        "retry_base_seconds": 0.01,
        "retry_cap_seconds": 0.02,
    }
    StreamJobs.reset()


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Worker processes a test starts; any still running at the end are killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(30)


# --- The console as `make run` serves it: uvicorn and config.asgi, in a subprocess ---
#
# The browser tests and the run.sh test drive the very server a user runs, not a test-only
# one (pytest-django's live_server serves static files that uvicorn did not). It gets the
# test database through DATABASE_URL and a free port (never 8000: two suites may run side
# by side), so the data a test creates must be committed: use transactional_db.

#: How long a server may take to answer its first request on a busy machine.
START_DEADLINE_SECONDS = 120.0
#: How long a stopped server may take to exit before it is killed.
STOP_DEADLINE_SECONDS = 60.0


@dataclass
class ServedConsole:
    """A server process in a process group of its own, and where to reach it."""

    process: subprocess.Popen[bytes]
    base_url: str
    log: Path
    #: What its database sessions are called in pg_stat_activity.
    application_name: str

    def output(self) -> str:
        """Everything the process group wrote to stdout and stderr so far."""
        return self.log.read_text(errors="replace")

    def get(self, path: str) -> tuple[int, str]:
        """GET ``path``: (status, body), whatever the status."""
        try:
            with urllib.request.urlopen(self.base_url + path, timeout=30) as response:
                return response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    def page(self, path: str) -> str:
        """GET ``path``, which must answer 200: the body."""
        status, body = self.get(path)
        assert status == 200, (path, status)
        return body


def served_database_url(application_name: str = "") -> str:
    """DATABASE_URL for the test database (a unix socket directory is %2F-encoded), its
    sessions named ``application_name`` in pg_stat_activity."""
    db = connection.settings_dict
    auth = quote(db["USER"], safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    port = f":{db['PORT']}" if db.get("PORT") else ""
    query = f"?application_name={quote(application_name)}" if application_name else ""
    name = quote(db["NAME"], safe="")
    return f"postgresql://{auth}@{quote(db['HOST'], safe='')}{port}/{name}{query}"


def console_env(application_name: str = "", **overrides: str) -> dict[str, str]:
    """The environment of a server on the test database, defaults as for `make run`."""
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_DEBUG"}
    env.update(DATABASE_URL=served_database_url(application_name), PYTHONUNBUFFERED="1")
    env.update(overrides)  # DATABASE_URL too (a console through PgBouncer)
    return env


def start_console(argv: list[str], port: int, log: Path, **env: str) -> ServedConsole:
    """Start ``argv`` in a new process group; return once it answers HTTP on ``port``."""
    application_name = f"eventdesk-console-{port}"
    with open(log, "wb") as output:  # the child keeps its own descriptor
        process = subprocess.Popen(
            argv, cwd=ROOT, env=console_env(application_name, **env),
            stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    served = ServedConsole(process, f"http://127.0.0.1:{port}", log, application_name)
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while True:
        if process.poll() is not None:
            raise AssertionError(f"{argv} exited with {process.returncode}:\n{served.output()}")
        try:
            # Any answer will do, a redirect too (not followed: with EVENTDESK_PUBLIC_URL
            # set, plain HTTP is sent to a host that is not this one).
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                probe.request("GET", "/admin/login/")
                probe.getresponse().read()
            finally:
                probe.close()
            return served
        except OSError:  # not listening yet
            pass
        if time.monotonic() > deadline:
            stop_console(served)
            raise AssertionError(f"{argv} did not answer on port {port}:\n{served.output()}")
        time.sleep(0.1)


def stop_console(served: ServedConsole) -> None:
    """SIGTERM to the whole process group; SIGKILL what is left after the deadline."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(served.process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        served.process.wait(STOP_DEADLINE_SECONDS)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(served.process.pid, signal.SIGKILL)
    served.process.wait()


def uvicorn_argv(port: int) -> list[str]:
    """The server command of scripts/run.sh."""
    return [
        sys.executable, "-m", "uvicorn", "config.asgi:application",
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
        "--timeout-graceful-shutdown", "10",
    ]  # fmt: skip


@pytest.fixture
def served_env(django_db_setup: None) -> Callable[..., dict[str, str]]:
    """``served_env(**overrides)``: the environment of a process of ours on the test
    database, with `make run`'s defaults (DEBUG off)."""
    return console_env


@pytest.fixture
def launch_console(django_db_setup: None, tmp_path: Path) -> Iterator[Callable[..., ServedConsole]]:
    """Start a server of this test's own: ``launch_console(argv, **env)`` (``argv(port)``
    gives the command, uvicorn's by default); each is stopped at the end of the test."""
    started: list[ServedConsole] = []

    def launch(argv: Callable[[int], list[str]] = uvicorn_argv, **env: str) -> ServedConsole:
        port = free_port()
        log = tmp_path / f"console-{len(started)}.log"
        served = start_console(argv(port), port, log, **env)
        started.append(served)
        return served

    yield launch
    for served in started:
        stop_console(served)


@pytest.fixture(scope="session")
def console_server(
    django_db_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedConsole]:
    """The console as `make run` serves it, on the test database, for the whole session."""
    port = free_port()
    log = tmp_path_factory.mktemp("console") / "console.log"
    served = start_console(uvicorn_argv(port), port, log)
    yield served
    stop_console(served)


def _debian_binary(name: str) -> str:
    """Debian's ``prometheus`` package brings both binaries; CI installs it (.ci/run). A
    developer without it sees the tests skipped with the reason; in CI a missing one fails."""
    found = shutil.which(os.environ.get(f"EVENTDESK_{name.upper()}", name))
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is required in CI but missing (see .ci/run)")
        pytest.skip(f"no {name}: install Debian's prometheus package to run these")
    return found


@pytest.fixture(scope="session")
def promtool() -> str:
    """The path of Debian's ``promtool``."""
    return _debian_binary("promtool")


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    """The path of Debian's ``prometheus`` server."""
    return _debian_binary("prometheus")


# --- rebuilds: the test projections' own tables (tests/rebuilds.py) ---


@pytest.fixture
def rebuild_tables(transactional_db: None) -> Iterator[None]:
    """Empty tables for the rebuild tests' projections; after the test they go, with every
    rebuild schema and role this database has."""
    from tests.rebuilds import DROP_REBUILD_LEFTOVERS, TABLE_MODELS, FailsOnThirteen, Totals

    with connection.cursor() as cursor:
        cursor.execute(DROP_REBUILD_LEFTOVERS)
    with connection.schema_editor() as editor:
        for model in TABLE_MODELS:
            editor.create_model(model)
    Totals.factor, Totals.gate, FailsOnThirteen.armed = 1, None, False
    yield
    Totals.factor, Totals.gate, FailsOnThirteen.armed = 1, None, False
    with connection.cursor() as cursor:
        cursor.execute(DROP_REBUILD_LEFTOVERS)


@pytest.fixture
def rebuilds(settings: Any, rebuild_tables: None) -> Any:
    """The rebuild acts' world (tests/rebuild_world.py): ``test.rb_totals`` projected with
    its first code, the fix deployed; a ``RebuildWorld`` to take a rebuild where a test
    needs it."""
    from tests.rebuild_world import rebuild_world

    return rebuild_world(settings)


# --- A real PgBouncer in transaction mode (tests/pgbouncer.py) ------------------------


@pytest.fixture(scope="session")
def pgbouncer_binary() -> str:
    """The path of Debian's ``pgbouncer`` (1.18 on Debian 12); CI installs it (.ci/run).
    A developer without it sees the tests skipped with the reason; in CI a missing one
    fails."""
    found = shutil.which(os.environ.get("EVENTDESK_PGBOUNCER", "pgbouncer")) or (
        DEFAULT_BINARY if os.access(DEFAULT_BINARY, os.X_OK) else None
    )
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("pgbouncer is required in CI but missing (see .ci/run)")
        pytest.skip("no pgbouncer: install Debian's pgbouncer package to run these")
    return found


@pytest.fixture
def pgbouncer(django_db_setup: None, pgbouncer_binary: str) -> Iterator[PgBouncer]:
    """A PgBouncer of this test's own, in transaction mode, on a free port, in front of the
    test database's server: ``pgbouncer.url(dbname)`` is a DATABASE_URL through it;
    ``stop()`` and ``start()`` restart it on the same port. Removed at the end."""
    db = connection.settings_dict
    bouncer = make_pgbouncer(
        pgbouncer_binary, db["HOST"], int(db["PORT"] or 5432), db["USER"], db["PASSWORD"] or ""
    )
    bouncer.start()
    yield bouncer
    remove(bouncer)
