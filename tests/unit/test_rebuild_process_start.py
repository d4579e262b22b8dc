"""The worker's rebuild supervisor when the rebuild child cannot be started at all (the
fork refused, the interpreter gone): it logs why, backs off and tries again, and the
worker's other threads go on (before, the ``OSError`` ended the supervisor's thread and
with it the whole worker)."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

import pytest

from subscribers.rebuilds.process import RebuildProcess
from tests.support import wait_for

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


class _FailingFirst(RebuildProcess):
    """Its first ``failures`` commands name a program that does not exist."""

    def __init__(self, failures: int, missing: Path, stop: threading.Event) -> None:
        super().__init__(["bench"], "test-owner", stop)
        self.failures, self.missing, self.attempts = failures, missing, 0

    def command(self) -> list[str]:
        self.attempts += 1
        return [str(self.missing)] if self.attempts <= self.failures else SLEEPER


def test_a_child_that_cannot_be_started_is_tried_again_and_the_supervisor_lives(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="eventdesk.rebuilds")
    stop = threading.Event()
    supervisor = _FailingFirst(2, tmp_path / "no-such-python", stop)
    raised: list[BaseException] = []

    def body() -> None:
        try:
            supervisor.run()
        except BaseException as exc:  # what the worker's _spawn would turn into a crash
            raised.append(exc)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    try:
        child = wait_for(lambda: supervisor.child, timeout=30, what="the third attempt's child")
        assert child.poll() is None, "the child started after two failures is running"
        assert supervisor.attempts == 3
        assert not raised
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 2, [r.getMessage() for r in caplog.records]
        assert "could not start the rebuild process" in errors[0].getMessage()
        assert "no-such-python" in errors[0].getMessage()
        assert "trying again in 1s" in errors[0].getMessage()
        assert "trying again in 2s" in errors[1].getMessage()
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive()
    assert not raised
    assert child.poll() is not None, "stopping the supervisor ends its child"


def test_a_stop_during_the_backoff_ends_the_supervisor_at_once(tmp_path: Path) -> None:
    stop = threading.Event()
    supervisor = _FailingFirst(10, tmp_path / "no-such-python", stop)
    thread = threading.Thread(target=supervisor.run, daemon=True)
    thread.start()
    # The third attempt comes 1 + 2 s after the first; then the pause is 4 s.
    wait_for(lambda: supervisor.attempts >= 3, timeout=60, what="the third attempt")
    stop.set()
    thread.join(timeout=2.0)  # well within the 4 s pause it was in
    assert not thread.is_alive(), "the supervisor slept through the stop"
    assert supervisor.child is None
    assert supervisor.attempts == 3
