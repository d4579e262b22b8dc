"""The payload's own key order survives jsonb: recorded only when jsonb would change it,
and the fields are shown short first, long ones folded."""

from __future__ import annotations

from eventstore.payload import FOLD_OVER, payload_fields
from eventstore.types import KEY_ORDER, NewEvent, StreamAppend, in_key_order, validate_appends


def appended_metadata(data: dict[str, object]) -> str:
    [(_, texts)] = validate_appends([StreamAppend("s", [NewEvent("E", data, {"actor": "a"})])])
    return texts[1]


def test_the_order_is_recorded_only_when_jsonb_would_change_it() -> None:
    assert KEY_ORDER not in appended_metadata({"n": 1, "payload": "x"})  # jsonb's order
    assert KEY_ORDER not in appended_metadata({"only": 1})
    recorded = appended_metadata({"severity": "critical", "message": "m", "at": "t"})
    assert f'"{KEY_ORDER}": ["severity", "message", "at"]' in recorded
    assert '"actor": "a"' in recorded


def test_the_keys_come_back_in_their_own_order() -> None:
    stored = {"at": "t", "message": "m", "severity": "critical"}  # as jsonb returns them
    metadata = {KEY_ORDER: ["severity", "message", "at"]}
    assert list(in_key_order(stored, metadata)) == ["severity", "message", "at"]
    assert list(in_key_order(stored, {})) == ["at", "message", "severity"]
    # A key the recorded order does not name comes after the others.
    assert list(in_key_order({**stored, "z": 1}, metadata)) == ["severity", "message", "at", "z"]


def test_short_fields_first_long_ones_folded() -> None:
    data = {"excerpt": "x" * 160_000, "severity": "critical", "message": "Agent attached it"}
    fields = payload_fields(data, {KEY_ORDER: list(data)})
    assert [f.key for f in fields] == ["severity", "message", "excerpt"]
    assert [f.folded for f in fields] == [False, False, True]
    assert fields[2].length == 160_000
    assert len(fields[2].summary) <= 121
    assert FOLD_OVER < 160_000
