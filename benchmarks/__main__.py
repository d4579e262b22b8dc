"""``python -m benchmarks [--quick] [--events N] [--only NAME ...]``: run, print, write JSON."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from benchmarks.results import RESULTS_DIR, Results, load_average, machine_info

SECTIONS = (
    "append", "catchup", "latency", "reaction", "reactions", "dismissal", "growth", "metrics",
    "rebuild",
)  # fmt: skip


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="reduced sizes (a minute or two)")
    parser.add_argument(
        "--events", type=int, help="catch-up events per measurement (default 30,000; quick 3,000)"
    )
    parser.add_argument(
        "--peer-events", type=int, help="eventsourcing peer events (default: --events; 0 skips it)"
    )
    parser.add_argument(
        "--growth-large",
        type=int,
        help="events in the large growth table (1,000,000; quick 100,000)",
    )
    parser.add_argument(
        "--duration", type=float, help="seconds of the 200/s appender per run (10; quick 5)"
    )
    parser.add_argument("--rate", type=float, default=200.0, help="appender events per second")
    parser.add_argument("--reaction-events", type=int, help="events the sleeping reaction handles")
    parser.add_argument("--reaction-sleep", type=float, default=0.2, help="seconds per handle")
    parser.add_argument("--only", action="append", choices=SECTIONS, default=[],
                        help="run only this section (repeatable)")  # fmt: skip
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "latest.json")
    parser.add_argument("--isolated", action="store_true",
                        help="run on a private PostgreSQL cluster (.data/bench-cluster) instead of"
                        " the shared embedded server: other databases' transactions then cannot"
                        " hold back the cluster-wide horizon")  # fmt: skip
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="interleaved rounds per ratio (the median is judged; default 3)",
    )
    parser.add_argument(
        "--rebuild-events", type=int, help="rebuilt history (1,000,000; quick 100,000)"
    )
    parser.add_argument(
        "--min-seconds",
        type=float,
        help="work per side per round: a faster side is run again, taking turns with the"
        " other sides, until it has run this long (default 2; quick 1)",
    )
    parser.add_argument("--fresh", action="store_true", help="drop and recreate the bench database")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    quick = args.quick
    events = args.events or (3_000 if quick else 30_000)
    peer_events = (
        (min(events, 2_000) if quick else events) if args.peer_events is None else args.peer_events
    )
    large = args.growth_large or (100_000 if quick else 1_000_000)
    # Long enough for a p99 of hundreds of samples (quick: 1,000 at 200/s; the 99th
    # percentile is then the 10th worst, not one outlier).
    duration = args.duration or (5.0 if quick else 10.0)
    reaction_events = args.reaction_events or (10 if quick else 50)
    sections = args.only or list(SECTIONS)
    from benchmarks.stable import MIN_SECONDS_FULL, MIN_SECONDS_QUICK

    min_seconds = args.min_seconds or (MIN_SECONDS_QUICK if quick else MIN_SECONDS_FULL)

    from benchmarks.db import BenchDatabase

    db = BenchDatabase(isolated=args.isolated)
    db.create(fresh=args.fresh)
    db.quiet_autovacuum()
    db.point_django_here()

    import django
    from django.core.management import call_command

    django.setup()
    from config.squashed import partly_migrated

    if partly_migrated("default"):  # a benchmark database from before the squash: a new one
        print(f"  note: {db.name!r} predates the squashed migrations; recreating it")
        from django.db import connections

        connections.close_all()
        db.create(fresh=True)
    call_command("migrate", run_syncdb=True, verbosity=0, interactive=False)

    from benchmarks import append, catchup, growth, live, metrics, reactions, rebuild

    results = Results()
    print(f"Eventdesk benchmarks ({'quick' if quick else 'full'}) on database {db.name!r}")
    results.note(f"load average at the start: {load_average()} ({os.cpu_count()} cores)")
    started = time.perf_counter()
    section_started = started

    def section_done(name: str) -> None:
        nonlocal section_started
        now = time.perf_counter()
        results.note(f"{name}: {now - section_started:.0f}s (load average {load_average()})")
        section_started = now

    if "append" in sections:
        append.run(db, results, quick=quick, rounds=args.rounds, min_seconds=min_seconds)
        section_done("append")
    if "catchup" in sections:
        catchup.run(db, results, events=events, quick=quick, peer_events=peer_events,
                    rounds=args.rounds, min_seconds=min_seconds)  # fmt: skip
        section_done("catchup")
    if "latency" in sections:
        live.run_latency(db, results, rate=args.rate, duration=duration, rounds=args.rounds)
        section_done("latency")
    if "reaction" in sections:
        live.run_reaction(db, results, rate=args.rate, events=reaction_events,
                          sleep=args.reaction_sleep, duration=duration,
                          rounds=args.rounds)  # fmt: skip
        section_done("reaction")
    if "reactions" in sections:
        reactions.run(db, results, quick=quick, rounds=args.rounds, min_seconds=min_seconds)
        section_done("reactions")
    if "dismissal" in sections:
        live.run_dismissal(db, results, rate=args.rate, duration=duration)
        section_done("dismissal")
    if "growth" in sections:
        growth.run(db, results, small=10_000, large=large, rate=args.rate, rounds=args.rounds)
        section_done("growth")
    if "metrics" in sections:
        catchup_events = metrics.QUICK_CATCHUP_EVENTS if quick else 100_000
        metrics.run(db, results, events=large, catchup_events=args.events or catchup_events,
                    rounds=args.rounds, min_seconds=min_seconds)  # fmt: skip
        section_done("metrics")
    if "rebuild" in sections:
        rebuild.run(db, results, events=args.rebuild_events or (100_000 if quick else 1_000_000),
                    rate=args.rate, rounds=args.rounds)  # fmt: skip
        section_done("rebuild")
    options = {
        "quick": quick, "events": events, "peer_events": peer_events, "growth_large": large,
        "duration": duration, "rate": args.rate, "reaction_events": reaction_events,
        "reaction_sleep": args.reaction_sleep, "sections": sections, "min_seconds": min_seconds,
        "isolated_cluster": args.isolated, "seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    results.write(args.output, machine_info(db.server_version()), options)
    print()
    print(results.table())
    missed = results.missed()
    print(
        f"\n{len(results.items)} figures, {len(missed)} target(s) missed; written to {args.output}"
    )
    for item in missed:
        print(f"  missed: {item.name} = {item.value:g} {item.unit} (target {item.target})")
    db.stop_isolated()
    return 0


if __name__ == "__main__":
    sys.exit(main())
