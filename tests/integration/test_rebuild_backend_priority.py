"""A niced rebuild process gives its database backends its priority, where the server
runs on this host and lets it: PostgreSQL has none of its own, and a rebuild's queries
otherwise compete with the live projections' for the cores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from subscribers.listener import listener_connection_params
from subscribers.rebuilds.process import lower_backend_priority
from tests.support import ROOT, raw_connection

pytestmark = pytest.mark.django_db

CHILD = """
import json, os, sys
import django
import psycopg
django.setup()
from subscribers.rebuilds.process import lower_backend_priority
params = json.loads(sys.argv[1])
os.nice(int(sys.argv[2]))
with psycopg.connect(**params, autocommit=True) as conn:
    done = lower_backend_priority(conn)
    print(json.dumps({"done": done, "ours": os.getpriority(os.PRIO_PROCESS, 0),
                      "backend": os.getpriority(os.PRIO_PROCESS, conn.info.backend_pid)}))
"""


def _in_a_niced_process(nice: int) -> dict[str, int]:
    params = {k: v for k, v in listener_connection_params().items() if v is not None}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(params, default=str), str(nice)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux only)")
def test_a_niced_process_gives_its_backend_its_priority() -> None:
    if not str(listener_connection_params().get("host", "")).startswith("/"):
        pytest.skip("the test database is reached over TCP (the backend is not this host's)")
    seen = _in_a_niced_process(7)
    assert seen == {"done": True, "ours": seen["ours"], "backend": seen["ours"]}
    assert seen["ours"] >= 7


def test_a_process_at_the_usual_priority_leaves_its_backend_alone() -> None:
    with raw_connection() as conn:
        before = os.getpriority(os.PRIO_PROCESS, conn.info.backend_pid)
        lower_backend_priority(conn)
        assert os.getpriority(os.PRIO_PROCESS, conn.info.backend_pid) == before


@pytest.mark.parametrize(
    ("host", "pid"),
    [
        pytest.param("db.example.com", 1, id="over-tcp"),
        pytest.param("/run/postgresql", os.getpid(), id="a-pid-that-is-no-backend"),
    ],
)
def test_a_backend_that_may_not_be_this_hosts_is_never_touched(host: str, pid: int) -> None:
    before = os.getpriority(os.PRIO_PROCESS, pid)
    info = SimpleNamespace(host=host, backend_pid=pid, user="eventdesk", dbname="eventdesk")
    assert lower_backend_priority(SimpleNamespace(info=info)) is False
    assert os.getpriority(os.PRIO_PROCESS, pid) == before
