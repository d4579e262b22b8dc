"""A worker's PostgreSQL connections are bounded by its connection pool, not by the
``concurrency`` of its reactions, even when every ``handle`` uses the ORM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.stream_invariants import check_streams, peaks_until_handled
from tests.subscribers import OrmStreamJobs
from tests.workers import busy_stream_worker

pytestmark = pytest.mark.django_db(transaction=True)

#: The worker's pool: its own threads (the loop, the lease renewer) and the handle calls
#: share these; the LISTEN connection is its own, outside the pool.
POOL_MAX_SIZE = 6
JOBS = 64


def test_a_worker_whose_handles_use_the_orm_keeps_its_backends_within_its_pool(
    processes: list[Any], tmp_path: Path
) -> None:
    name = busy_stream_worker(
        processes,
        tmp_path / "worker.log",
        "tests.subscribers.OrmStreamJobs",
        JOBS,
        0.5,
        db_pool_max_size=str(POOL_MAX_SIZE),
    )
    most = peaks_until_handled(
        name, JOBS, timeout=120, what=f"{JOBS} jobs at concurrency {OrmStreamJobs.concurrency}"
    )
    assert most["in_flight"] >= 16, most  # really many handle calls at once
    # The pool, plus the listener's own connection: not one connection per handle call.
    assert most["backends"] <= POOL_MAX_SIZE + 1, (most, (tmp_path / "worker.log").read_text())
    check_streams(OrmStreamJobs.name)
