"""A rebuilding worker killed (SIGKILL) during the build, the catch-up and the swap: the
next worker resumes where the rebuild stood, and the swap is all or nothing."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction

from eventstore import NewEvent
from eventstore.postgres import PostgresEventStore
from subscribers.models import Bookmark, Rebuild
from subscribers.rebuilds import start_rebuild, swap_rebuild
from subscribers.rebuilds.audit import REBUILD_STREAM
from subscribers.rebuilds.runner import RebuildRunner
from subscribers.registry import build_registry
from tests.factories import append_to
from tests.rebuilds import KillableTotals, RbEntry, RbTotal, replayed, rows
from tests.support import wait_for
from tests.workers import drain, start_worker

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("rebuild_tables")]

PROJECTION = "tests.rebuilds.KillableTotals"
NAME = KillableTotals.name


def added(count: int, start: int = 0) -> None:
    for chunk in range(start, start + count, 200):
        append_to(
            f"acct-{chunk}",
            [NewEvent("Added", {"key": f"k{i % 11}", "amount": i})
             for i in range(chunk, min(start + count, chunk + 200))],
        )  # fmt: skip


def live_caught_up() -> None:
    registry = build_registry([KillableTotals()])
    head = PostgresEventStore().head()
    drain(registry, lambda: Bookmark.objects.get(subscriber_name=NAME).cursor >= head)


def rebuild_row() -> Rebuild:
    return Rebuild.objects.get(projection_name=NAME)


def worker(tmp_path: Path, label: str, **env: str) -> subprocess.Popen[bytes]:
    return start_worker(
        [PROJECTION],
        "--projections-only",
        "--no-history",
        log=tmp_path / f"{label}.log",
        lease_seconds="2",
        retry_base_seconds="0.2",
        **env,
    )


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(30)


def killed_under_way(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]], events_done: int, what: str
) -> Rebuild:
    """A slowed worker, killed once the rebuild has ``events_done`` events: the rebuild as
    it stood then."""
    processes.append(first := worker(tmp_path, "first", rb_slow="0.002"))
    wait_for(lambda: rebuild_row().events_done >= events_done, what=what)
    kill(first)
    return rebuild_row()


def verified_by_the_next_worker(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> Rebuild:
    """The next worker takes the rebuild over until it is verified, then is killed: the
    rebuild as it stood verified."""
    processes.append(worker(tmp_path, "second"))
    wait_for(lambda: rebuild_row().phase == "ready", timeout=120, what="the rebuild verified")
    done = rebuild_row()
    kill(processes[-1])
    return done


def started(**kwargs: Any) -> Rebuild:
    with transaction.atomic():
        return start_rebuild(
            NAME,
            reason="crash test",
            started_by=None,
            registry=build_registry([KillableTotals()]),
            **kwargs,
        )


def steps_until(phase: str) -> None:
    """Drive the rebuild in this process until it reaches ``phase``."""
    runner = RebuildRunner(build_registry([KillableTotals()]).projections, "test")

    def reached() -> bool:
        if rebuild_row().phase == phase:
            return True
        runner.step()
        return rebuild_row().phase == phase

    wait_for(reached, what=f"the rebuild {phase}")


def assert_replayed() -> None:
    totals, entries = replayed()
    assert rows(RbEntry) == entries
    assert rows(RbTotal) == totals


def swap_here() -> None:
    with transaction.atomic(durable=True):
        swap_rebuild(NAME, registry=build_registry([KillableTotals()]))


def test_killed_while_building_the_next_worker_resumes_where_it_stood(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    added(1500)
    live_caught_up()
    started()
    at_kill = killed_under_way(tmp_path, processes, 300, "the build under way")
    assert at_kill.phase == "building"
    assert 0 < at_kill.events_done < 1500
    done = verified_by_the_next_worker(tmp_path, processes)
    # Resumed, not started over: every event counted once.
    assert done.events_done == 1500
    assert done.verification is not None
    assert all(
        t["only_live"] == t["only_new"] == t["differing"] == 0
        for t in done.verification["tables"].values()
    )
    swap_here()
    assert_replayed()


def test_killed_while_catching_up_the_next_worker_resumes_where_it_stood(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    added(300)
    live_caught_up()
    started()
    steps_until("catching_up")
    added(1500, start=300)  # arrived during the build: the catch-up's work
    live_caught_up()
    at_kill = killed_under_way(tmp_path, processes, 600, "the catch-up under way")
    assert at_kill.phase == "catching_up"
    assert at_kill.events_done < 1800
    assert verified_by_the_next_worker(tmp_path, processes).events_done == 1800
    swap_here()
    assert_replayed()


def test_killed_inside_the_swap_nothing_of_it_lands_and_the_next_worker_swaps(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    starter = User.objects.create_user("deployer")
    added(300)
    live_caught_up()
    with transaction.atomic():
        start_rebuild(
            NAME, reason="deploy 42", started_by=starter, swap_when_verified=True,
            registry=build_registry([KillableTotals()]),
        )  # fmt: skip
    steps_until("verifying")
    # The verification runs in this process, without the swap (this runner's projection
    # is not the worker's): let a worker process swap it.
    Rebuild.objects.filter(projection_name=NAME).update(swap_when_verified=False)
    steps_until("ready")
    Rebuild.objects.filter(projection_name=NAME).update(swap_when_verified=True)
    added(50, start=300)  # the live projection moves on: the swap has events to apply
    live_caught_up()
    before_rows, before_live = rows(RbTotal), Bookmark.objects.get(subscriber_name=NAME).cursor
    marker = tmp_path / "in-swap"
    processes.append(first := worker(tmp_path, "first", rb_swap_marker=str(marker)))
    wait_for(marker.exists, what="the worker inside the swap")
    kill(first)
    # Nothing of the swap landed.
    assert rebuild_row().phase == "ready"
    assert rows(RbTotal) == before_rows
    assert Bookmark.objects.get(subscriber_name=NAME).cursor == before_live
    with connection.cursor() as cursor:  # made at the start, empty: no live table moved
        cursor.execute(
            "SELECT count(*) FROM pg_class WHERE relnamespace = to_regnamespace(%s)",
            [rebuild_row().kept_schema],
        )
        assert cursor.fetchone() == (0,)
    assert not PostgresEventStore().read_stream(REBUILD_STREAM) or all(
        e.data["choice"] != "RebuildSwapped"
        for e in PostgresEventStore().read_stream(REBUILD_STREAM)
    )
    processes.append(worker(tmp_path, "second"))
    wait_for(lambda: rebuild_row().phase == "swapped", timeout=120, what="the swap")
    kill(processes[-1])
    assert_replayed()
    [swapped] = [
        e for e in PostgresEventStore().read_stream(REBUILD_STREAM)
        if e.data["choice"] == "RebuildSwapped"
    ]  # fmt: skip
    assert swapped.data["actor"]["username"] == "deployer"
    assert swapped.metadata["via"] == "worker"
    assert swapped.data["reason"] == "deploy 42"
    assert swapped.data["inputs"]["automatic"] is True
    assert swapped.data["inputs"]["diff"]["position"] is not None
