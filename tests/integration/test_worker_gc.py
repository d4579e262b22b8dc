"""A long-running ``run_subscribers`` moves its startup heap out of the garbage
collector's reach (``gc.freeze``): a full collection then no longer stops every thread
of the worker for tens of milliseconds to walk Django and the modules. ``--once`` (a
short run) does not: it would pay a full collection for nothing."""

from __future__ import annotations

import gc
import os
import weakref
from pathlib import Path

import pytest

from eventstore.types import RecordedEvent
from subscribers.management.commands.run_subscribers import freeze_startup_heap
from tests.factories import append
from tests.support import wait_for
from tests.workers import run_worker, start_worker

FREEZE_FILE = "EVENTDESK_TEST_FREEZE_FILE"


class FreezeCount:
    """Writes how many objects its process has frozen, on each event."""

    name = "test.freeze_count"

    def apply(self, event: RecordedEvent) -> None:
        Path(os.environ[FREEZE_FILE]).write_text(str(gc.get_freeze_count()))


SUBSCRIBER = f"{__name__}.FreezeCount"


@pytest.mark.django_db(transaction=True)
def test_a_running_worker_has_frozen_its_startup_heap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "frozen"
    monkeypatch.setenv(FREEZE_FILE, str(out))
    worker = start_worker([SUBSCRIBER], log=tmp_path / "worker.log")
    try:
        append("s", "Ping")
        frozen = wait_for(lambda: out.exists() and out.read_text(), what="the projection's note")
    finally:
        worker.terminate()
        worker.wait(60)
    assert int(frozen) > 10_000, (tmp_path / "worker.log").read_text()[-2000:]


@pytest.mark.django_db(transaction=True)
def test_once_leaves_the_heap_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "frozen"
    monkeypatch.setenv(FREEZE_FILE, str(out))
    append("s", "Ping")
    done = run_worker([SUBSCRIBER], "--once")
    assert done.returncode == 0, done.stderr
    assert out.read_text() == "0"


def test_garbage_made_after_the_freeze_is_still_collected() -> None:
    class Node:
        pass

    before = gc.get_freeze_count()
    freeze_startup_heap()
    try:
        assert gc.get_freeze_count() > before
        a, b = Node(), Node()
        a.other, b.other = b, a  # type: ignore[attr-defined]  # a cycle: only gc frees it
        gone = weakref.ref(a)
        del a, b
        gc.collect()
        assert gone() is None
    finally:
        gc.unfreeze()
