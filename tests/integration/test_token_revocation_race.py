"""Two operators revoke the same API token at the same moment: it is revoked once, and
exactly one ``TokenRevoked`` decision records it (the second revocation finds nothing
live to revoke)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from eventstore.postgres import PostgresEventStore
from reactions_admin.acts.tokens.handler import TOKEN_DECISION_STREAM, issue_token, revoke_tokens
from tests.factories import operator
from tests.support import raw_connection, wait_for

LOCK_WAITERS = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock'
"""


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_revocations_of_one_token_are_audited_once() -> None:
    issued = issue_token(operator("robot"))
    outcomes: list[Any] = []

    def revoke() -> None:
        try:
            outcomes.append(revoke_tokens(prefix=issued.token.prefix, via="race"))
        except Exception as exc:  # the assertion below shows it
            outcomes.append(exc)
        finally:
            connection.close()

    # Hold the token's row so both revocations are in flight before either can go on.
    with raw_connection(autocommit=False) as holder, raw_connection() as observer:
        holder.execute(
            "SELECT 1 FROM reactions_admin_apitoken WHERE id = %s FOR UPDATE", [issued.token.pk]
        )
        threads = [threading.Thread(target=revoke) for _ in range(2)]
        for thread in threads:
            thread.start()
        wait_for(
            lambda: observer.execute(LOCK_WAITERS).fetchone() == (2,),
            what="both revocations waiting on the token's row",
        )
        holder.rollback()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes, key=str) == [0, 1], outcomes
    revoked = [
        d
        for d in PostgresEventStore().read_stream(TOKEN_DECISION_STREAM)
        if d.data["choice"] == "TokenRevoked"
    ]
    assert [d.data["inputs"]["token_prefix"] for d in revoked] == [issued.token.prefix]
