from __future__ import annotations

import pytest

from config.database_url import InvalidDatabaseUrl, parse


def test_full_url() -> None:
    parsed = parse("postgresql://ops:s%40cret@db.internal:6543/eventdesk?sslmode=require")
    assert parsed["NAME"] == "eventdesk"
    assert (parsed["USER"], parsed["PASSWORD"]) == ("ops", "s@cret")
    assert (parsed["HOST"], parsed["PORT"]) == ("db.internal", "6543")
    assert parsed["OPTIONS"] == {"sslmode": "require"}
    assert parsed["ENGINE"] == "django.db.backends.postgresql"


def test_unix_socket_host() -> None:
    parsed = parse("postgres://%2Fvar%2Frun%2Fpostgresql/eventdesk")
    assert parsed["HOST"] == "/var/run/postgresql"
    assert parsed["PORT"] == ""


@pytest.mark.parametrize(
    ("url", "message"),
    [("mysql://x/y", "postgresql://"), ("postgresql://host", "names no database")],
)
def test_bad_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(InvalidDatabaseUrl, match=message):
        parse(url)


def test_statement_preparation_can_be_turned_off_for_a_pooling_proxy() -> None:
    parsed = parse("postgresql://u@pgbouncer:6432/eventdesk?prepare_threshold=none")
    assert parsed["OPTIONS"] == {"prepare_threshold": None}
    parsed = parse("postgresql://u@db/eventdesk?prepare_threshold=3&server_side_binding=false")
    assert parsed["OPTIONS"] == {"prepare_threshold": 3, "server_side_binding": False}
