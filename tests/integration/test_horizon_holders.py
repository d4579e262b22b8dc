"""The console can name the transaction that holds every reader back."""

from __future__ import annotations

import time

import pytest

from eventstore.horizon import horizon_holders
from tests.support import raw_connection

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_idle_open_transaction_is_named() -> None:
    with raw_connection(autocommit=False) as idle:
        idle.execute("SET application_name = 'forgotten-psql'")
        idle.execute("SELECT pg_current_xact_id()")  # takes an xid, then sits idle
        pid = idle.info.backend_pid
        deadline = time.monotonic() + 10
        found = []
        while time.monotonic() < deadline:
            found = [h for h in horizon_holders(min_age_seconds=0.2) if h.pid == pid]
            if found:
                break
            time.sleep(0.1)
        assert found, "the idle transaction was not reported"
        holder = found[0]
        assert holder.application == "forgotten-psql"
        assert holder.state == "idle in transaction"
        assert holder.open_seconds >= 0.2
        assert "forgotten-psql" in str(holder)
        idle.rollback()
    assert not [h for h in horizon_holders(min_age_seconds=0) if h.pid == pid]
