"""A real PgBouncer (Debian's package, 1.18) in transaction mode, started by the tests on a
free port in front of a PostgreSQL reached by its unix socket.

As root (CI), PgBouncer runs as the unprivileged user of the embedded server
(``eventdesk-pg``): like PostgreSQL, it is not run as root. Its configuration, log and
pid file live in a directory of its own under the system's temporary directory. The
fixtures that use it are in tests/conftest.py (``pgbouncer``, ``pgbouncer_binary``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from config import embedded_pg
from tests.support import free_port

#: Where Debian's package puts it (.ci/run installs it).
DEFAULT_BINARY = "/usr/sbin/pgbouncer"
#: How long PgBouncer may take to listen, or to exit, on a busy machine.
DEADLINE_SECONDS = 30.0


@dataclass
class PgBouncer:
    """One PgBouncer process in transaction mode: ``url(dbname)`` goes through it."""

    binary: str
    #: The PostgreSQL it forwards to (a unix socket directory, or a host) and its port.
    server_host: str
    server_port: int
    user: str
    directory: Path
    password: str = ""
    port: int = 0
    default_pool_size: int = 20
    process: subprocess.Popen[bytes] | None = None

    def url(self, dbname: str, application_name: str = "") -> str:
        """A ``DATABASE_URL`` through PgBouncer (TCP on 127.0.0.1)."""
        query = f"?application_name={quote(application_name)}" if application_name else ""
        return f"postgresql://{quote(self.user, safe='')}@127.0.0.1:{self.port}/{dbname}{query}"

    @property
    def log(self) -> Path:
        return self.directory / "pgbouncer.log"

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def write_config(self) -> Path:
        """pgbouncer.ini and its auth file (trust: the names must still be listed)."""
        users = self.directory / "userlist.txt"
        users.write_text(f'"{self.user}" ""\n')
        config = self.directory / "pgbouncer.ini"
        config.write_text(
            "\n".join(
                [
                    "[databases]",
                    f"* = host={self.server_host} port={self.server_port}"
                    + (f" password={self.password}" if self.password else ""),
                    "[pgbouncer]",
                    "listen_addr = 127.0.0.1",
                    f"listen_port = {self.port}",
                    "unix_socket_dir =",
                    "auth_type = trust",
                    f"auth_file = {users}",
                    "pool_mode = transaction",
                    f"default_pool_size = {self.default_pool_size}",
                    "max_client_conn = 500",
                    f"logfile = {self.log}",
                    f"pidfile = {self.directory / 'pgbouncer.pid'}",
                    # psycopg sends none of these; listed so that a client that does works.
                    "ignore_startup_parameters = extra_float_digits,options",
                    # Fail fast while the server is down (a restart test), retry soon after.
                    "server_login_retry = 1",
                    "server_connect_timeout = 5",
                    "",
                ]
            )
        )
        return config

    def start(self) -> None:
        """Start it (again, on the same port after a ``stop``); return once it listens."""
        if not self.port:
            self.port = free_port()
        config = self.write_config()
        _own_tree(self.directory, self.user_to_run_as())
        kwargs: dict[str, object] = {}
        entry = self.user_to_run_as()
        if entry is not None:
            kwargs = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        self.process = subprocess.Popen(  # type: ignore[call-overload]
            [self.binary, "-q", str(config)],
            cwd=self.directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            **kwargs,
        )
        deadline = time.monotonic() + DEADLINE_SECONDS
        while not self.listening():
            if self.process.poll() is not None:
                raise AssertionError(
                    f"pgbouncer exited with {self.process.returncode}:\n{self.log_text()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"pgbouncer never listened:\n{self.log_text()}")
            time.sleep(0.05)

    def listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        """Immediate shutdown (SIGTERM): every client connection is cut."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def user_to_run_as(self) -> pwd.struct_passwd | None:
        """As root, the embedded server's unprivileged user; otherwise ourselves."""
        if os.geteuid() != 0:
            return None
        return embedded_pg.server_user()


def make_pgbouncer(
    binary: str, server_host: str, server_port: int, user: str, password: str = ""
) -> PgBouncer:
    """A PgBouncer (not started) with a directory of its own that its user can reach."""
    directory = Path(tempfile.mkdtemp(prefix="eventdesk-pgbouncer-"))
    directory.chmod(0o755)
    return PgBouncer(binary, server_host, server_port, user, directory, password)


def remove(bouncer: PgBouncer) -> None:
    """Stop it and remove its directory."""
    bouncer.stop()
    shutil.rmtree(bouncer.directory, ignore_errors=True)


def _own_tree(directory: Path, entry: pwd.struct_passwd | None) -> None:
    if entry is None:
        return
    for path in [directory, *directory.iterdir()]:
        os.chown(path, entry.pw_uid, entry.pw_gid)
