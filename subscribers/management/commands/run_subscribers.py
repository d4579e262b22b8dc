"""``manage.py run_subscribers``: run the configured projections and reactions."""

from __future__ import annotations

import argparse
import gc
import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor

from config.options import options
from config.squashed import HINT as SQUASH_HINT
from config.squashed import partly_migrated
from subscribers.metrics import WorkerMetrics
from subscribers.rebuilds.process import REBUILDS_ONLY, become_rebuild_child, lower_priority
from subscribers.registry import Kind, SubscriberRegistry, UnknownSubscriber, load_registry
from subscribers.shutdown import stop_on_signals
from subscribers.streams import OrderingSwitchRefused
from subscribers.worker import Worker

logger = logging.getLogger("eventdesk.worker")

#: The apps whose tables and functions the worker's own statements use.
WORKER_APPS = ("eventstore", "subscribers")


def refuse_unapplied_migrations() -> None:
    """A ``CommandError`` naming the migrations of ``WORKER_APPS`` this database lacks.

    Without it a worker started against a database ``migrate`` has not reached failed on
    its first batch with "function eventdesk_commit_without_flush() does not exist", or
    a missing column, far from the cause. A database that applied part of the history a
    squashed migration replaces is refused too (the loader then shows no node to apply).
    A database that cannot be asked (down, or a role that may not read
    ``django_migrations``) is logged and let pass: the worker waits out an outage."""
    try:
        problems = partly_migrated(connection.alias)
        executor = MigrationExecutor(connection)
        leaves = [key for key in executor.loader.graph.leaf_nodes() if key[0] in WORKER_APPS]
        missing = [f"{m.app_label}.{m.name}" for m, _ in executor.migration_plan(leaves)]
    except DatabaseError as exc:
        logger.warning("could not check the database's migrations (%s); starting anyway", exc)
        return
    if problems:
        raise CommandError(f"{'; '.join(problems)}. {SQUASH_HINT}")
    if missing:
        raise CommandError(
            f"the database lacks {len(missing)} migration(s) the worker needs"
            f" ({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}):"
            " run `manage.py migrate` first"
        )


class Command(BaseCommand):
    help = (
        "Run the subscribers of EVENTDESK_SUBSCRIBERS: projections in one loop, each reaction "
        "in its own. SIGTERM/SIGINT finish the current batch and exit 0."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--once", action="store_true", help="process what can be processed now, then exit"
        )
        parser.add_argument(
            "--subscriber",
            action="append",
            default=[],
            metavar="NAME",
            help="run only this subscriber (repeatable)",
        )
        parser.add_argument(
            "--metrics-port",
            type=int,
            metavar="PORT",
            help="serve this worker's Prometheus metrics at http://HOST:PORT/metrics",
        )
        parser.add_argument(
            "--metrics-host",
            default="127.0.0.1",
            metavar="HOST",
            help="the address --metrics-port listens on (default 127.0.0.1: this host only)",
        )
        parser.add_argument(
            "--no-history",
            action="store_true",
            help="do not sample the subscribers' lag into the history table (the lag trend)",
        )
        kinds = parser.add_mutually_exclusive_group()
        kinds.add_argument("--projections-only", action="store_true")
        kinds.add_argument("--reactions-only", action="store_true")
        kinds.add_argument(
            REBUILDS_ONLY,
            action="store_true",
            help="run only the rebuilds of the projections, at a lower priority (the worker"
            " starts this process itself, unless EVENTDESK_REBUILD_PROCESS=0)",
        )
        # The rebuild child's: its parent's worker id, and the parent it ends with.
        parser.add_argument("--owner", help=argparse.SUPPRESS)
        parser.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)

    def handle(self, *args: Any, **opts: Any) -> None:
        refused_option(opts)
        kinds: tuple[Kind, ...] = ("projection", "reaction")
        if opts["projections_only"] or opts["rebuilds_only"]:
            kinds = ("projection",)
        elif opts["reactions_only"]:
            kinds = ("reaction",)
        try:
            registry = load_registry().select(opts["subscriber"], kinds=kinds)
        except UnknownSubscriber as exc:
            raise CommandError(str(exc)) from exc
        if not len(registry):
            raise CommandError("No subscriber to run (see EVENTDESK_SUBSCRIBERS and the options).")
        if opts["rebuilds_only"]:
            self.run_rebuilds(registry, opts["owner"], opts["parent_pid"])
            return
        self.check(databases=["default"], tags=["eventdesk_rebuilds"])  # declared tables exist
        if not opts["once"]:  # a worker started before `migrate` fails at once, and says why
            refuse_unapplied_migrations()
        metrics = None
        if opts["metrics_port"] is not None:
            metrics = WorkerMetrics()
            try:
                metrics.serve(opts["metrics_port"], opts["metrics_host"])
            except OSError as exc:
                raise CommandError(
                    f"cannot serve metrics on {opts['metrics_host']}:{opts['metrics_port']}: {exc}"
                ) from exc
            self.stderr.write(
                f"metrics at http://{opts['metrics_host']}:{opts['metrics_port']}/metrics"
            )
        worker = Worker(
            registry,
            metrics=metrics,
            sample_history=not (opts["no_history"] or opts["once"]),
            rebuilds="process" if options().rebuild_process else "thread",
        )
        if not opts["once"]:  # a short run (a test's, a benchmark's) would pay a collection
            freeze_startup_heap()
        try:
            with stop_on_signals(worker.request_stop):
                if opts["once"]:
                    done = worker.run_once()
                    self.stdout.write(f"run_subscribers --once: {done} event(s) processed")
                    return
                status = worker.run()
        except OrderingSwitchRefused as exc:
            raise CommandError(str(exc)) from exc
        if status:
            raise CommandError("the worker stopped after a crash (see the log above)")

    def run_rebuilds(
        self, registry: SubscriberRegistry, owner: str | None, parent_pid: int | None
    ) -> None:
        """``--rebuilds-only``: the worker's rebuild child, or a rebuild worker of its own."""
        worker = Worker(registry, owner=owner)
        lower_priority()
        freeze_startup_heap()
        with stop_on_signals(worker.request_stop):
            if parent_pid is not None:
                become_rebuild_child(parent_pid, worker.request_stop)
            status = worker.run_rebuilds()
        if status:
            raise CommandError("the rebuilds stopped after a crash (see the log above)")


def freeze_startup_heap() -> None:
    """Move what a long-running worker holds after its start (Django, the app registry,
    psycopg, the subscribers' modules: about 100,000 objects) out of the garbage
    collector's reach (``gc.freeze``). A full collection walked all of them, every thread
    of the worker stopped for about 50 ms, and the one that came in a 10-second run made
    the live projection's p99 (benchmarks/README.md, "The live projection's p99 was a
    garbage collection"). Garbage made later is collected as before; the frozen objects
    are freed as usual when nothing refers to them, only a cycle among them would stay."""
    gc.collect()
    gc.freeze()


def refused_option(opts: dict[str, Any]) -> None:
    """An option the command would ignore: ``--rebuilds-only`` runs until stopped and
    serves no metrics; ``--owner`` and ``--parent-pid`` are the worker's child's alone."""
    if opts["rebuilds_only"]:
        given = [("--once", opts["once"]), ("--metrics-port", opts["metrics_port"] is not None)]
        for flag, present in given:
            if present:
                raise CommandError(f"{REBUILDS_ONLY} takes no {flag} (it runs until stopped"
                                   " and serves no metrics)")  # fmt: skip
        return
    for flag, key in (("--owner", "owner"), ("--parent-pid", "parent_pid")):
        if opts[key] is not None:
            raise CommandError(f"{flag} is for {REBUILDS_ONLY} (the worker's rebuild process)")
