from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from config.options import options


def test_defaults() -> None:
    with override_settings(EVENTDESK={}):
        assert options().max_attempts == 5
        assert options().event_store == "postgres"


def test_settings_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with override_settings(EVENTDESK={"max_attempts": 3, "subscribers": ["a.B", "c.D"]}):
        assert options().max_attempts == 3
        assert options().subscribers == ("a.B", "c.D")
        monkeypatch.setenv("EVENTDESK_MAX_ATTEMPTS", "7")
        options.cache_clear()
        assert options().max_attempts == 7


@pytest.mark.parametrize(
    ("configured", "message"),
    [
        ({"max_attempts": 0}, "at least 1"),
        ({"max_attempts": "many"}, "max_attempts"),
        ({"event_store": "sqlite"}, "must be one of"),
        ({"poll_interval_seconds": -1}, "positive"),
        ({"no_such_option": 1}, "Unknown"),
        ({"rebuild_nice": -1}, "rebuild_nice must be from 0 to 19"),
        ({"rebuild_nice": 20}, "rebuild_nice must be from 0 to 19"),
        ({"rebuild_process": "maybe"}, "rebuild_process"),
    ],
)
def test_bad_options_are_refused(configured: dict[str, object], message: str) -> None:
    with (
        override_settings(EVENTDESK=configured),
        pytest.raises(ImproperlyConfigured, match=message),
    ):
        options()


@pytest.mark.parametrize("nice", [0, 19])
def test_the_rebuild_nice_takes_the_ends_of_its_range(nice: int) -> None:
    with override_settings(EVENTDESK={"rebuild_nice": nice}):
        assert options().rebuild_nice == nice
