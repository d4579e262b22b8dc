"""The reaction benchmark's judge of "a connection held across handle": a transaction open
before a handle began and the same one still open at its end counts; another thread's short
write that began just before it does not."""

from __future__ import annotations

import pytest

from benchmarks.results import held_connection_seconds

BEGIN, END = 100.0, 100.2  # one handle that slept 0.2 s
Samples = list[tuple[float, set[tuple[int, float]]]]


def held(samples: Samples) -> float:
    return held_connection_seconds(samples, [(BEGIN, END)])


def every_5_ms(open_until: dict[tuple[int, float], float]) -> Samples:
    """Samples every 5 ms from just before the handle to just after it, each holding the
    transactions of ``open_until`` (backend, start -> end) open at that moment."""
    samples: Samples = []
    for step in range(-2, 44):
        at = BEGIN + step * 0.005
        samples.append((at, {key for key, until in open_until.items() if key[1] <= at < until}))
    return samples


def test_a_transaction_held_across_handle_counts_its_seconds() -> None:
    assert held(every_5_ms({(7, BEGIN - 0.05): END + 1})) == pytest.approx(0.2, abs=0.006)


def test_a_short_write_that_began_just_before_handle_does_not_count() -> None:
    assert held(every_5_ms({(8, BEGIN - 0.001): BEGIN + 0.004})) == 0


def test_a_transaction_begun_during_handle_does_not_count() -> None:
    assert held(every_5_ms({(9, BEGIN + 0.05): END + 1})) == 0


def test_a_new_transaction_on_the_same_backend_is_not_the_held_one() -> None:
    # Backend 7 commits a short write at the start, then begins another one mid-handle.
    assert held(every_5_ms({(7, BEGIN - 0.001): BEGIN + 0.004, (7, BEGIN + 0.1): END + 1})) == 0
