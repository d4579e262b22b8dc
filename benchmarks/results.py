"""Figures, their targets, the printed table and ``results/latest.json``."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Result:
    """One figure. ``target`` is a readable rule ("≥ 0.7"), ``met`` None when untargeted.

    A figure measured several times (interleaved with the other side of its ratio) has
    ``value`` = the median of its ``samples``, and ``spread`` = their (min, max); the
    target is judged on the median.
    """

    name: str
    value: float
    unit: str
    target: str = ""
    met: bool | None = None
    samples: list[float] = field(default_factory=list)
    spread: tuple[float, float] | None = None


class Results:
    """The figures of one run, in the order they were measured."""

    def __init__(self) -> None:
        self.items: list[Result] = []
        self.notes: list[str] = []

    def add(
        self,
        name: str,
        value: float | Sequence[float],
        unit: str,
        *,
        at_least: float | None = None,
        at_most: float | None = None,
        below: float | None = None,
    ) -> Result:
        """A figure: one value, or the samples of repeated runs (their median is judged)."""
        samples: list[float] = []
        spread: tuple[float, float] | None = None
        if not isinstance(value, int | float):
            samples = [round(float(v), 4) for v in value]
            value = median(samples)
            spread = (min(samples), max(samples))
        target, met = "", None
        if at_least is not None:
            target, met = f">= {at_least:g}", value >= at_least
        elif at_most is not None:
            target, met = f"<= {at_most:g}", value <= at_most
        elif below is not None:
            target, met = f"< {below:g}", value < below
        result = Result(name, round(float(value), 4), unit, target, met, samples, spread)
        self.items.append(result)
        print(_row(result), flush=True)
        return result

    def ratio(
        self,
        name: str,
        numerator: Sequence[float],
        denominator: Sequence[float],
        *,
        at_least: float | None = None,
        at_most: float | None = None,
    ) -> Result:
        """The ratio of two sides measured interleaved: one ratio per round (each round's
        two measurements were taken next to each other), the median of those judged."""
        if len(numerator) != len(denominator) or not numerator:
            raise ValueError(f"{name}: the two sides need the same number of rounds")
        rounds = [a / max(b, 1e-12) for a, b in zip(numerator, denominator, strict=True)]
        return self.add(name, rounds, "ratio", at_least=at_least, at_most=at_most)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  note: {text}", flush=True)

    def table(self) -> str:
        lines = [_header(), "-" * len(_header())]
        lines += [_row(item) for item in self.items]
        return "\n".join(lines)

    def missed(self) -> list[Result]:
        return [item for item in self.items if item.met is False]

    def write(self, path: Path, machine: dict[str, object], options: dict[str, object]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "machine": machine,
            "options": options,
            "results": [_document(item) for item in self.items],
            "notes": self.notes,
        }
        path.write_text(json.dumps(document, indent=2, default=str) + "\n")


def _document(item: Result) -> dict[str, object]:
    """A figure in latest.json: its median (``value``), its spread and its samples."""
    document = asdict(item)
    document["median"] = item.value
    document["min"], document["max"] = item.spread if item.spread else (item.value, item.value)
    document["runs"] = len(item.samples) or 1
    return document


def load_average() -> str:
    """``/proc/loadavg``'s three figures: how busy the (shared) machine was."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _header() -> str:
    return f"{'name':<80} {'median':>10} {'spread (min-max)':>19} {'unit':<9} {'target':<8} met"


def _number(value: float) -> str:
    return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"


def _row(item: Result) -> str:
    met = {True: "yes", False: "NO", None: ""}[item.met]
    spread = f"{_number(item.spread[0])}-{_number(item.spread[1])}" if item.spread else ""
    return (
        f"{item.name:<80} {_number(item.value):>10} {spread:>19} {item.unit:<9}"
        f" {item.target:<8} {met}"
    )


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank), 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def held_connection_seconds(
    samples: Sequence[tuple[float, set[tuple[int, float]]]], windows: list[tuple[float, float]]
) -> float:
    """Connection-seconds of transactions held across a ``handle`` call, from ``samples``
    of the open transactions (wall time, {(backend pid, transaction start)}) and each
    call's (start, end) in ``windows``: a transaction already open when the call began,
    and the same one (backend and start) still open in the last sample before it ended,
    counts from the call's start to that sample.

    Another thread's short write that began just before a call (the heartbeat, a lease
    renewal) is in the window's first sample but long gone by its last, so it does not
    count (summing every sample once counted it, 5 ms once in a while)."""
    total = 0.0
    for begin, end in windows:
        inside = [(at, open_) for at, open_ in samples if begin <= at <= end]
        if len(inside) < 2:
            continue
        (_, first), (last_at, last) = inside[0], inside[-1]
        held = {key for key in first & last if key[1] < begin}
        total += len(held) * (last_at - begin)
    return total


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _memory_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _git_commit() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return done.stdout.strip() + ("+uncommitted" if dirty.stdout.strip() else "")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def machine_info(postgres_version: str) -> dict[str, object]:
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_bytes": _memory_bytes(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "django": _version("Django"),
        "psycopg": _version("psycopg"),
        "eventsourcing": _version("eventsourcing"),
        "postgres": postgres_version,
        "git_commit": _git_commit(),
        "load_average_at_end": load_average(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
