"""``run_subscribers`` runs its rebuilds in a child process (``run_subscribers
--rebuilds-only``) at a lower CPU priority: the child builds, is started again when it
dies, stops with the worker's SIGTERM and dies with a SIGKILLed worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_rebuild_crashes import (
    PROJECTION,
    added,
    kill,
    live_caught_up,
    rebuild_row,
    started,
    worker,
)
from tests.support import ROOT, wait_for
from tests.workers import run_worker, start_worker, worker_env

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("rebuild_tables")]


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text.rpartition(")")[2].split()  # after "pid (comm)": state, ppid, ...


def alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def rebuild_children(parent: int) -> list[int]:
    """The live processes whose parent is ``parent`` and that run ``--rebuilds-only``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields is None or fields[0] == "Z" or int(fields[1]) != parent:
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError):
            continue
        if b"--rebuilds-only" in command:
            found.append(int(entry.name))
    return found


def niceness(pid: int) -> int:
    fields = _stat(pid)
    assert fields is not None, f"process {pid} is gone"
    return int(fields[16])  # the 19th field of /proc/PID/stat


def the_child(parent: subprocess.Popen[bytes], other_than: int | None = None) -> int:
    def found() -> int | None:
        children = [pid for pid in rebuild_children(parent.pid) if pid != other_than]
        return children[0] if children else None

    return int(wait_for(found, what="the worker's rebuild process"))


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_the_rebuild_runs_in_a_niced_child_that_dies_with_a_killed_worker(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    added(1500)
    live_caught_up()
    started()
    processes.append(parent := worker(tmp_path, "parent", rb_slow="0.002", rebuild_nice="7"))
    child = the_child(parent)
    lower = niceness(parent.pid) + 7
    wait_for(lambda: niceness(child) == lower, what="the rebuild process at nice +7")
    wait_for(lambda: rebuild_row().events_done >= 300, what="the child building")
    assert rebuild_row().phase == "building"
    kill(parent)
    wait_for(lambda: not alive(child), what="the rebuild process gone with the worker")
    stood = rebuild_row().events_done
    assert 300 <= stood < 1500


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_a_rebuild_process_that_dies_is_started_again_and_the_rebuild_goes_on(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    added(900)
    live_caught_up()
    started()
    processes.append(parent := worker(tmp_path, "parent", rb_slow="0.002"))
    first = the_child(parent)
    wait_for(lambda: rebuild_row().events_done >= 100, what="the first child building")
    os.kill(first, signal.SIGKILL)
    second = the_child(parent, other_than=first)
    assert second != first
    wait_for(lambda: rebuild_row().phase == "ready", timeout=120, what="the rebuild verified")
    assert rebuild_row().events_done == 900  # resumed, each event counted once
    assert parent.poll() is None
    assert "exited with -9; starting another" in (tmp_path / "parent.log").read_text()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_sigterm_stops_the_worker_and_its_rebuild_process(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    processes.append(parent := worker(tmp_path, "parent"))
    child = the_child(parent)
    parent.terminate()
    assert parent.wait(60) == 0
    assert not alive(child)


def test_with_the_rebuild_process_off_the_worker_rebuilds_in_a_thread(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    added(300)
    live_caught_up()
    started()
    processes.append(parent := worker(tmp_path, "parent", rebuild_process="0"))
    seen: set[int] = set()

    def verified() -> bool:
        seen.update(rebuild_children(parent.pid))
        return rebuild_row().phase == "ready"

    wait_for(verified, timeout=120, what="the rebuild verified by the worker itself")
    assert rebuild_row().events_done == 300
    assert seen == set()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_a_rebuild_worker_of_its_own_runs_at_the_lower_priority_too(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    """``--rebuilds-only`` started by hand (no parent worker): its help promises the lower
    priority, as for the worker's child."""
    added(600)
    live_caught_up()
    started()
    processes.append(
        alone := start_worker(
            [PROJECTION],
            "--rebuilds-only",
            log=tmp_path / "alone.log",
            lease_seconds="2",
            rb_slow="0.002",
            rebuild_nice="6",
        )
    )
    wait_for(lambda: rebuild_row().events_done >= 100, what="the rebuild worker building")
    assert niceness(alone.pid) == niceness(os.getpid()) + 6


@pytest.mark.parametrize(
    ("given", "refused"),
    [
        (["--rebuilds-only", "--once"], "--once"),
        (["--rebuilds-only", "--metrics-port", "1"], "--metrics-port"),
        (["--owner", "someone"], "--owner"),
        (["--parent-pid", "1"], "--parent-pid"),
    ],
)
def test_options_a_rebuild_worker_would_ignore_are_refused(given: list[str], refused: str) -> None:
    """``--rebuilds-only`` runs until stopped and serves no metrics; ``--owner`` and
    ``--parent-pid`` are the worker's child's alone: refused, not ignored (it ran for ever,
    or a worker ran under a borrowed id)."""
    done = run_worker([PROJECTION], *given)
    assert done.returncode != 0
    assert refused in done.stderr
    assert "started" not in done.stderr


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_a_rebuild_process_slower_than_the_shutdown_timeout_is_killed_not_abandoned(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    """Its batch (10 s) outlasts the shutdown timeout (2 s): the worker kills it and
    exits 0 once it is gone. The live batches all finished: nothing of the worker's was
    abandoned (the worker's join used to run out first and say so)."""
    added(1200)
    live_caught_up()
    started()
    processes.append(
        parent := worker(tmp_path, "parent", rb_slow="0.01", shutdown_timeout_seconds="2")
    )
    child = the_child(parent)
    wait_for(lambda: rebuild_row().phase == "building", what="the child in its first batch")
    parent.terminate()
    assert parent.wait(60) == 0
    assert not alive(child)  # killed and reaped by the worker, not left to its death signal
    log = (tmp_path / "parent.log").read_text()
    assert f"rebuilds: process {child} did not stop in time; killed" in log
    assert "abandoned" not in log


def test_the_rebuild_process_imports_the_workers_modules_whatever_the_directory(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    """``python /path/to/manage.py run_subscribers`` from a directory with a module named
    like one of Eventdesk's: the worker imports its own (its script's directory comes
    first); so must its rebuild process (``python -m`` put the directory first)."""
    (tmp_path / "config.py").write_text("raise ImportError('not the settings package')\n")
    added(300)
    live_caught_up()
    started()
    with open(tmp_path / "parent.log", "wb") as output:
        parent = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "run_subscribers", "--projections-only"],
            cwd=tmp_path,
            env=worker_env([PROJECTION], lease_seconds="2"),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    processes.append(parent)
    wait_for(lambda: rebuild_row().phase == "ready", timeout=120, what="the rebuild verified")
    assert "exited with" not in (tmp_path / "parent.log").read_text()
