"""``python -m benchmarks.spread RUN.json RUN.json ...``: the run-to-run spread of each figure.

For every figure present in all the runs: the run medians, and the spread as
± half the range over their median (the issue's aim: every ratio within ±15%).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def spread(paths: list[Path]) -> list[tuple[str, list[float], float]]:
    """(name, the runs' values, ± spread as a fraction) for the figures of every run."""
    runs = [
        {item["name"]: (float(item["value"]), item["unit"]) for item in doc["results"]}
        for doc in (json.loads(path.read_text()) for path in paths)
    ]
    rows = []
    for name, (_, unit) in runs[0].items():
        if unit != "ratio" or not all(name in run for run in runs):
            continue
        values = [run[name][0] for run in runs]
        middle = statistics.median(values)
        rows.append((name, values, (max(values) - min(values)) / 2 / middle if middle else 0.0))
    return rows


def main(argv: list[str]) -> int:
    rows = spread([Path(arg) for arg in argv])
    for name, values, half_range in rows:
        shown = " ".join(f"{value:8.3f}" for value in values)
        flag = "" if half_range <= 0.15 else "  > ±15%"
        print(f"{name:<80} {shown}  ±{half_range:5.1%}{flag}")
    within = sum(1 for *_, half_range in rows if half_range <= 0.15)
    print(f"\n{within} of {len(rows)} ratios within ±15% over {len(argv)} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
