"""Run tests against a PostgreSQL of another version, in a throwaway cluster of their own.

    python -m tests.other_postgres --bindir /usr/lib/postgresql/15/bin --major 15 -- TESTS...

``make test-pg15`` runs it (the selection and why: the Makefile's ``SQL_TESTS``). It
makes a cluster in a temporary directory with that version's ``initdb``, starts it on a
free port of 127.0.0.1 (password authentication, a random password), checks that the
server is the version asked for, runs pytest with ``DATABASE_URL`` pointing at it, and
removes the cluster whatever the outcome. The suite then creates its own test database
there, exactly as it does on any server named by ``DATABASE_URL``.

PostgreSQL refuses to run as root: as root, the server runs as the embedded server's
unprivileged system user (``eventdesk-pg``), which owns the temporary directory.
Nothing outside that directory changes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from config.embedded_pg import (
    DATABASE,
    SUPERUSER,
    EmbeddedServerError,
    as_server_user,
    run_program,
)

ROOT = Path(__file__).resolve().parent.parent
#: Attempts at a free port: another process may take the one we picked before we bind it.
PORT_ATTEMPTS = 3


@dataclass(frozen=True)
class Cluster:
    """A running throwaway cluster: where it lives and how to reach it."""

    root: Path
    port: int
    password: str
    version: str

    @property
    def database_url(self) -> str:
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{DATABASE}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(bindir: Path, program: str, *args: str, cwd: Path) -> str:
    return run_program(bindir, program, *args, cwd=cwd)


def server_major(bindir: Path) -> int:
    """The major version of the server binaries in ``bindir`` (``postgres --version``)."""
    output = subprocess.run(
        [str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    found = re.search(r"\(PostgreSQL\) (\d+)", output)
    if found is None:
        raise EmbeddedServerError(f"cannot read the version of {bindir / 'postgres'}: {output!r}")
    return int(found.group(1))


@contextlib.contextmanager
def throwaway_cluster(bindir: Path) -> Iterator[Cluster]:
    """A new cluster of ``bindir``'s version, running until the block ends, then removed."""
    root = Path(tempfile.mkdtemp(prefix="eventdesk-pg-"))
    try:
        user = as_server_user()
        if user:
            os.chown(root, user["user"], user["group"])
        password = secrets.token_hex(16)
        pwfile = root / "password"
        pwfile.write_text(password + "\n")
        if user:
            os.chown(pwfile, user["user"], user["group"])
        _run(
            bindir, "initdb", "--auth=scram-sha-256", f"--pwfile={pwfile}", "-U", SUPERUSER,
            "--encoding=UTF8", "--locale=C", "-D", str(root / "data"), cwd=root,
        )  # fmt: skip
        pwfile.unlink()
        port = _start(bindir, root)
        try:
            with psycopg.connect(
                host="127.0.0.1", port=port, user=SUPERUSER, password=password,
                dbname="postgres", autocommit=True,
            ) as conn:  # fmt: skip
                conn.execute(f'CREATE DATABASE "{DATABASE}"')
                version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
            yield Cluster(root, port, password, version)
        finally:
            _run(bindir, "pg_ctl", "-D", str(root / "data"), "-m", "fast", "-w", "stop", cwd=root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _start(bindir: Path, root: Path) -> int:
    """Start the server on a free port of 127.0.0.1; its unix socket stays in ``root``."""
    for attempt in range(PORT_ATTEMPTS):
        port = _free_port()
        # fsync off: a throwaway cluster need not survive a power cut, and the tests
        # run faster; it changes nothing a reader or a transaction can observe.
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c max_connections=200 -c fsync=off"
        )
        try:
            _run(
                bindir, "pg_ctl", "-D", str(root / "data"), "-l", str(root / "server.log"),
                "-o", options, "-w", "-t", "60", "start", cwd=root,
            )  # fmt: skip
            return port
        except EmbeddedServerError:
            log = (root / "server.log").read_text(errors="replace")
            if "could not bind" not in log or attempt == PORT_ATTEMPTS - 1:
                raise EmbeddedServerError(f"the server did not start:\n{log}") from None
    raise AssertionError("unreachable")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--bindir", type=Path, required=True, help="the server's bin directory")
    parser.add_argument("--major", type=int, help="refuse to run unless it is this version")
    parser.add_argument("pytest_args", nargs="*", help="what pytest runs (after --)")
    args = parser.parse_args(argv)
    if not (args.bindir / "initdb").exists():
        print(f"no PostgreSQL server in {args.bindir} (Debian: apt-get install postgresql-15)")
        return 2
    major = server_major(args.bindir)
    if args.major is not None and major != args.major:
        print(f"{args.bindir} holds PostgreSQL {major}, not {args.major}")
        return 2
    with throwaway_cluster(args.bindir) as cluster:
        print(f"== PostgreSQL {cluster.version} on 127.0.0.1:{cluster.port}", flush=True)
        env = {**os.environ, "DATABASE_URL": cluster.database_url}
        command = [sys.executable, "-m", "pytest", *args.pytest_args]
        return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
