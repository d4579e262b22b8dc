"""The embedded server: reused by a second process, restarted after a kill, never doubled.

These tests run a throwaway server of their own (its own data directory), so the
server the rest of the suite uses is left alone.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from config import embedded_pg
from config.embedded_pg import ServerLayout


def postmasters(layout: ServerLayout) -> list[int]:
    """Pids of postmaster processes serving this layout's data directory."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if args[0].endswith(b"/postgres") and str(layout.pgdata).encode() in args:
            found.append(int(proc.name))
    return found


@pytest.fixture
def throwaway(tmp_path: Path) -> Iterator[ServerLayout]:
    base = tmp_path / "project"
    base.mkdir()
    layout = embedded_pg.resolve_layout(base)
    yield layout
    embedded_pg.stop(layout)
    if layout.outside_tree:
        shutil.rmtree(layout.root, ignore_errors=True)


def query(layout: ServerLayout, sql: str) -> object:
    with psycopg.connect(
        host=str(layout.socket_dir), port=embedded_pg.PORT, user="postgres", dbname="eventdesk"
    ) as conn:
        row = conn.execute(sql).fetchone()
        return None if row is None else row[0]


def test_layout_follows_who_runs_it(tmp_path: Path) -> None:
    layout = embedded_pg.resolve_layout(tmp_path)
    if os.geteuid() != 0:
        assert layout.run_as is None
        assert layout.root == tmp_path / ".data" / "pg"
    else:
        assert layout.run_as == embedded_pg.SERVER_USER
        # pytest's tmp_path sits under a 0700 directory: the server user cannot reach it.
        assert layout.outside_tree
        assert layout.root.parent == embedded_pg.SYSTEM_STATE_DIR


def test_reachability_checks_every_parent(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    inner = closed / "inner"
    inner.mkdir(parents=True)
    closed.chmod(0o700)
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o755)
    assert not embedded_pg._reachable_by_others(inner)
    tmp_path.chmod(0o755)
    try:
        assert not embedded_pg._reachable_by_others(inner)
    finally:
        tmp_path.chmod(0o700)


def test_start_reuse_kill_restart_stop(throwaway: ServerLayout) -> None:
    layout = embedded_pg.ensure_running(throwaway)
    first = embedded_pg.status(layout)
    assert first.running
    assert first.initialized
    assert query(layout, "SELECT current_database()") == "eventdesk"
    if layout.run_as:
        assert query(layout, "SELECT current_setting('data_directory')") == str(layout.pgdata)
        owner = layout.pgdata.stat().st_uid
        assert owner != 0  # the server never runs as root

    # A second process reuses the running server.
    code = (
        "from pathlib import Path; from config import embedded_pg;"
        f"l = embedded_pg.ServerLayout(Path({str(layout.root)!r}), Path({str(layout.bin_dir)!r}),"
        f" {layout.run_as!r}, outside_tree={layout.outside_tree!r});"
        "embedded_pg.ensure_running(l); print(embedded_pg.status(l).pid)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert int(out.stdout.strip()) == first.pid
    assert postmasters(layout) == [first.pid]

    # A server killed without a clean shutdown is detected and restarted, not doubled.
    assert first.pid is not None
    os.kill(first.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while first.pid in postmasters(layout) and time.monotonic() < deadline:
        time.sleep(0.05)
    embedded_pg.ensure_running(layout)
    second = embedded_pg.status(layout)
    assert second.running
    assert second.pid != first.pid
    assert postmasters(layout) == [second.pid]
    assert query(layout, "SELECT 1") == 1

    assert embedded_pg.stop(layout) is True
    assert not embedded_pg.status(layout).running
    assert postmasters(layout) == []
    assert embedded_pg.stop(layout) is False
