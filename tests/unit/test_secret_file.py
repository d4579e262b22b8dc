"""The secret key and the operator password are made once, atomically, mode 0600: the
console, the worker and two test suites starting at the same moment all get the same."""

from __future__ import annotations

import multiprocessing
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from config.secret_file import SecretFileError, read_or_create

RACERS = 12


def test_the_first_use_writes_a_0600_file_and_later_uses_read_it(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "secret-key"
    first = read_or_create(path, lambda: "s3cret")
    assert first == "s3cret"
    assert path.read_text() == "s3cret\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_or_create(path, lambda: "another") == "s3cret"
    assert [p.name for p in path.parent.iterdir()] == ["secret-key"]  # no temporary left


def test_threads_racing_on_first_use_all_get_the_same_secret(tmp_path: Path) -> None:
    path = tmp_path / "secret-key"
    start = threading.Barrier(RACERS)
    results: list[str] = []

    def race(n: int) -> None:
        def generate() -> str:
            start.wait()  # every racer has missed the file and is about to write its own
            return f"candidate-{n}"

        results.append(read_or_create(path, generate))

    threads = [threading.Thread(target=race, args=(n,)) for n in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == RACERS
    assert set(results) == {path.read_text().strip()}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret-key"]


def _race_in_a_process(path: Path, n: int, start: Any, results: Any) -> None:
    def generate() -> str:
        start.wait()
        return f"candidate-{n}"

    results.put(read_or_create(path, generate))


def test_processes_racing_on_first_use_all_get_the_same_secret(tmp_path: Path) -> None:
    path = tmp_path / "secret-key"
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(RACERS), context.Queue()
    processes = [
        context.Process(target=_race_in_a_process, args=(path, n, start, results))
        for n in range(RACERS)
    ]
    for process in processes:
        process.start()
    secrets = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    assert set(secrets) == {path.read_text().strip()}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret-key"]


def test_an_empty_secret_file_is_a_clear_error_and_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "secret-key"
    path.write_text("")
    with pytest.raises(SecretFileError, match="is empty"):
        read_or_create(path, lambda: "s3cret")
    assert path.read_text() == ""


@pytest.mark.parametrize("bad", ["", "two\nlines"])
def test_a_bad_generated_secret_is_refused_and_nothing_is_written(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "secret-key"
    with pytest.raises(ValueError, match="one non-empty line"):
        read_or_create(path, lambda: bad)
    assert list(tmp_path.iterdir()) == []
