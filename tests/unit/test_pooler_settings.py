"""EVENTDESK_DB_POOLER: one setting says "behind a transaction pooler", and it implies no
prepared statements; a contradicting DATABASE_URL is refused, not half-obeyed."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import ProgrammingError

from config.pooler import apply_pooler, pooler_mode, prepared_statement_failure


@pytest.mark.parametrize(
    ("raw", "mode"),
    [(None, "none"), ("", "none"), (" Transaction ", "transaction"), ("session", "session")],
)
def test_the_modes(raw: str | None, mode: str) -> None:
    assert pooler_mode(raw) == mode


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match="none, session, transaction"):
        pooler_mode("statement")


def test_without_a_pooler_or_in_session_mode_statements_are_prepared() -> None:
    for mode in ("none", "session"):
        database: dict[str, Any] = {}
        apply_pooler(database, mode)
        assert database == {"OPTIONS": {"server_side_binding": True, "prepare_threshold": 5}}


def test_a_transaction_pooler_turns_preparation_off_binding_stays() -> None:
    database: dict[str, Any] = {}
    apply_pooler(database, "transaction")
    assert database == {
        "OPTIONS": {"server_side_binding": True, "prepare_threshold": None},
        "DISABLE_SERVER_SIDE_CURSORS": True,
    }


def test_a_url_that_asks_for_preparation_behind_a_transaction_pooler_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match="cannot carry prepared statements"):
        apply_pooler({"OPTIONS": {"prepare_threshold": 5}}, "transaction")


def test_a_url_that_says_none_is_kept_without_a_pooler() -> None:
    database: dict[str, Any] = {"OPTIONS": {"prepare_threshold": None}}
    apply_pooler(database, "none")
    assert database["OPTIONS"]["prepare_threshold"] is None


def test_a_missing_prepared_statement_is_recognised_through_djangos_wrapper() -> None:
    missing = psycopg.errors.InvalidSqlStatementName('prepared statement "_pg3_0" does not exist')
    wrapped = ProgrammingError(str(missing))
    wrapped.__cause__ = missing  # as Django's DatabaseErrorWrapper raises it
    assert prepared_statement_failure(wrapped)
    assert not prepared_statement_failure(ValueError("something else"))
