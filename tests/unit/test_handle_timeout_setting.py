"""``handle_timeout_seconds``: the option, and a reaction's own value, checked at startup."""

from __future__ import annotations

import pytest
from django.test import override_settings

from config.options import options
from subscribers.leases import LeaseKeeper
from subscribers.registry import InvalidSubscriber, describe


class Timed:
    name = "timed"

    def __init__(self, timeout: object) -> None:
        self.handle_timeout_seconds = timeout

    def handle(self, event: object) -> None:
        return None


def test_the_option_defaults_to_five_minutes_and_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with override_settings(EVENTDESK={}):
        assert options().handle_timeout_seconds == 300.0
        monkeypatch.setenv("EVENTDESK_HANDLE_TIMEOUT_SECONDS", "1.5")
        options.cache_clear()
        assert options().handle_timeout_seconds == 1.5


def test_a_reaction_may_declare_its_own_timeout() -> None:
    assert describe(Timed(2), "x").handle_timeout_seconds == 2.0
    assert describe(Timed(None), "x").handle_timeout_seconds is None  # the option applies


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), True, "30", [30]])
def test_a_bad_timeout_is_refused_with_the_reaction_named(bad: object) -> None:
    with pytest.raises(InvalidSubscriber, match=r"'timed'.*handle_timeout_seconds"):
        describe(Timed(bad), "x")


def test_tokens_are_the_worker_id_and_a_counter_never_reused() -> None:
    keeper = LeaseKeeper("host:42:cafe")
    tokens = [keeper.new_token() for _ in range(3)]
    assert tokens == ["host:42:cafe#1", "host:42:cafe#2", "host:42:cafe#3"]
    with pytest.raises(ValueError, match="worker id"):
        LeaseKeeper("h" * 200)  # its tokens would not fit projection_bookmarks.lease_owner
