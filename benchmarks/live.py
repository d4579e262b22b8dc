"""Benchmarks with a running ``manage.py run_subscribers`` process: end-to-end latency,
a sleeping reaction beside a projection, and the REST dismissal under load."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.catchup import place_bookmark
from benchmarks.db import WORKER_APP, BenchDatabase
from benchmarks.results import Results, held_connection_seconds, percentile
from benchmarks.stable import interleaved, settle
from benchmarks.subscribers import PING, SLEEP
from eventstore.types import NewEvent, StreamAppend

MANAGE = Path(__file__).resolve().parent.parent / "manage.py"
#: The reaction section's runs last at least this long, in the quick run too.
REACTION_MIN_SECONDS = 10.0
ARRIVALS = "benchmarks.subscribers.arrivals"
SLEEPER = "benchmarks.subscribers.sleeper"


@contextmanager
def running_worker(
    db: BenchDatabase, subscribers: list[str], **env: str
) -> Iterator[subprocess.Popen[bytes]]:
    """``manage.py run_subscribers`` in its own process, stopped with SIGTERM afterwards."""
    log = tempfile.NamedTemporaryFile(prefix="bench-worker-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, str(MANAGE), "run_subscribers"],
        env=db.worker_env(subscribers, **env),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        if process.returncode not in (0, -15):
            print(Path(log.name).read_text()[-3000:], file=sys.stderr)
        Path(log.name).unlink(missing_ok=True)


def _head() -> Any:
    from eventstore.store import get_event_store

    return get_event_store().head()


def _fresh_arrivals() -> None:
    from benchmarks.models import Arrival

    Arrival.objects.all().delete()
    place_bookmark("bench-arrivals", _head())


def _ping() -> tuple[uuid.UUID, float]:
    """Append one ping in its own transaction; return its id and the commit's wall time."""
    from eventstore.store import get_event_store

    event = NewEvent(PING, {"sent": time.time()})
    get_event_store().append_streams([StreamAppend(f"ping-{event.event_id}", [event])])
    return event.event_id, time.time()


def _wait_for_arrivals(ids: set[uuid.UUID], timeout: float = 60) -> dict[uuid.UUID, float]:
    from benchmarks.models import Arrival

    deadline = time.monotonic() + timeout
    while True:
        rows = dict(
            Arrival.objects.filter(event_id__in=ids).values_list("event_id", "projected_at")
        )
        if len(rows) == len(ids) or time.monotonic() > deadline:
            return {key: value.timestamp() for key, value in rows.items()}
        time.sleep(0.05)


def _warm_up(worker: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Wait until the worker projects a ping (it has started, connected and listens)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"run_subscribers exited with {worker.returncode}")
        event_id, _ = _ping()
        if _wait_for_arrivals({event_id}, timeout=1.0):
            time.sleep(0.2)
            return
    raise RuntimeError("the worker never projected a ping")


class Appender:
    """Appends pings at a steady rate (and, optionally, a few other events) in a thread."""

    def __init__(
        self, rate: float, duration: float, extra: tuple[tuple[float, str], ...] = ()
    ) -> None:
        self.rate, self.duration = rate, duration
        self.extra = sorted(extra)
        self.committed: dict[uuid.UUID, float] = {}
        self.late = 0
        self.stop = threading.Event()  # set: no more pings
        self.thread = threading.Thread(target=self._run, name="bench-appender", daemon=True)

    def start(self) -> Appender:
        self.thread.start()
        return self

    def join(self) -> None:
        self.thread.join()

    def _run(self) -> None:
        from django.db import connection

        from eventstore.store import get_event_store

        store = get_event_store()
        extra = list(self.extra)
        started = time.monotonic()
        try:
            for i in range(int(self.rate * self.duration)):
                if self.stop.is_set():
                    break
                due = started + i / self.rate
                while extra and extra[0][0] <= due - started:
                    _, kind = extra.pop(0)
                    store.append_streams([StreamAppend(f"x-{uuid.uuid4()}", [NewEvent(kind)])])
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                elif delay < -0.005:
                    self.late += 1
                event_id, committed = _ping()
                self.committed[event_id] = committed
        finally:
            connection.close()


def _latencies_ms(appender: Appender) -> list[float]:
    arrived = _wait_for_arrivals(set(appender.committed))
    missing = len(appender.committed) - len(arrived)
    if missing:
        raise RuntimeError(f"{missing} pings never reached the projection")
    return [(arrived[key] - committed) * 1000 for key, committed in appender.committed.items()]


def _report_latency(
    results: Results, label: str, values: list[float], target_p99: float | None
) -> None:
    results.add(f"{label} p50", percentile(values, 50), "ms")
    results.add(f"{label} p95", percentile(values, 95), "ms")
    if target_p99 is None:
        results.add(f"{label} p99", percentile(values, 99), "ms")
    else:
        results.add(f"{label} p99", percentile(values, 99), "ms", below=target_p99)
    results.add(f"{label} max", max(values), "ms")


class ForeignHorizonSampler:
    """How long transactions of *other* databases held an xid during a measurement.

    The horizon (``pg_snapshot_xmin``) is cluster-wide: while another database's
    transaction holds an xid, no Eventdesk reader sees events committed after it began.
    """

    def __init__(self, db: BenchDatabase, period: float = 0.01) -> None:
        self.db, self.period = db, period
        self.ages: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="bench-horizon", daemon=True)

    def _run(self) -> None:
        query = """
            SELECT coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)), 0)
            FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND datname <> current_database()
        """
        with self.db.connect(autocommit=True) as conn:
            while not self.stop.is_set():
                row = conn.execute(query).fetchone()
                self.ages.append(float(row[0]) * 1000 if row else 0.0)
                time.sleep(self.period)

    def __enter__(self) -> ForeignHorizonSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def summary(self) -> str:
        busy = [age for age in self.ages if age > 0]
        share = len(busy) / max(1, len(self.ages))
        return (
            f"other databases held an xid in {share:.0%} of samples"
            f" (oldest {max(busy, default=0):.0f} ms)"
        )


def measure_projection_latency(
    db: BenchDatabase,
    rate: float,
    duration: float,
    subscribers: list[str],
    extra: tuple[tuple[float, str], ...] = (),
    **env: str,
) -> list[float]:
    _fresh_arrivals()
    with running_worker(db, subscribers, **env) as worker:
        _warm_up(worker)
        with ForeignHorizonSampler(db) as horizon:
            appender = Appender(rate, duration, extra).start()
            appender.join()
            values = _latencies_ms(appender)
    print(f"  note: {horizon.summary()}")
    if appender.late:
        print(f"  note: the appender fell behind its schedule {appender.late} time(s)")
    return values


def run_latency(
    db: BenchDatabase, results: Results, *, rate: float, duration: float, rounds: int
) -> None:
    """Append-commit to projection-commit, with a live worker woken by NOTIFY; ``rounds``
    runs (each from a settled state), the median of each percentile judged."""
    runs = [
        _after_settling(db, lambda: measure_projection_latency(db, rate, duration, [ARRIVALS]))
        for _ in range(rounds)
    ]
    label = f"e2e latency at {rate:g}/s"
    for p, name in ((50, "p50"), (95, "p95"), (99, "p99")):
        values = [percentile(run, p) for run in runs]
        results.add(f"{label} {name}", values, "ms", below=10 if p == 99 else None)
    results.add(f"{label} max", [max(run) for run in runs], "ms")


def _after_settling(db: BenchDatabase, measure: Callable[[], list[float]]) -> list[float]:
    settle(db)
    return measure()


class ActivitySampler:
    """Samples ``pg_stat_activity`` for the worker's backends that are in a transaction."""

    def __init__(self, db: BenchDatabase, period: float = 0.005) -> None:
        self.db, self.period = db, period
        # (wall time, the worker's open transactions as (backend pid, start time))
        self.samples: list[tuple[float, set[tuple[int, float]]]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def _run(self) -> None:
        query = """
            SELECT pid, extract(epoch FROM xact_start) FROM pg_stat_activity
            WHERE datname = current_database() AND application_name = %s
              AND xact_start IS NOT NULL
              AND state IN ('active', 'idle in transaction', 'idle in transaction (aborted)')
        """
        with self.db.connect(autocommit=True) as conn:
            while not self.stop.is_set():
                rows = conn.execute(query, (WORKER_APP,)).fetchall()
                self.samples.append((time.time(), {(int(pid), float(at)) for pid, at in rows}))
                time.sleep(self.period)

    def __enter__(self) -> ActivitySampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def connection_seconds(self, windows: list[tuple[float, float]]) -> float:
        """Connection-seconds of transactions held across the ``handle`` calls ``windows``
        (see ``held_connection_seconds``)."""
        return held_connection_seconds(self.samples, windows)


def run_reaction(
    db: BenchDatabase,
    results: Results,
    *,
    rate: float,
    events: int,
    sleep: float,
    duration: float,
    rounds: int,
) -> None:
    """A reaction sleeping in ``handle`` must hold no transaction, nor slow a projection.

    The projection's p99 alone and beside the sleeping reaction are measured interleaved,
    ``rounds`` times each, every run at least ``REACTION_MIN_SECONDS`` (2,000 pings: the
    p99 is the 20th worst; in 5 s runs a round's ratio swung 0.6-2.6)."""
    from eventstore.store import get_event_store

    duration = max(duration, REACTION_MIN_SECONDS, events * sleep * 1.2 + 1)
    # Held connections are measured with the reaction alone in its worker, so that no
    # projection transaction can be mistaken for one held across handle.
    held_log = Path(tempfile.mkstemp(prefix="bench-reaction-", suffix=".log")[1])
    place_bookmark("bench-sleeper", _head(), kind="reaction")
    env = {"BENCH_REACTION_LOG": str(held_log), "BENCH_REACTION_SLEEP": str(sleep)}
    with running_worker(db, [SLEEPER], **env), ActivitySampler(db) as sampler:
        for _ in range(events):
            get_event_store().append_streams([StreamAppend(f"x-{uuid.uuid4()}", [NewEvent(SLEEP)])])
        handled = _wait_for_lines(held_log, events, timeout=events * sleep + 60)
    held_log.unlink(missing_ok=True)
    windows = [(float(parts[1]), float(parts[2])) for parts in handled]
    inside = [sum(int(parts[3]) for parts in handled)]
    extra = tuple((i * (duration - 1) / events, SLEEP) for i in range(events))

    def alone() -> float:
        return percentile(measure_projection_latency(db, rate, duration, [ARRIVALS]), 99)

    def beside() -> float:
        log = Path(tempfile.mkstemp(prefix="bench-reaction-", suffix=".log")[1])
        place_bookmark("bench-sleeper", _head(), kind="reaction")
        values = measure_projection_latency(
            db, rate, duration, [ARRIVALS, SLEEPER], extra,
            BENCH_REACTION_LOG=str(log), BENCH_REACTION_SLEEP=str(sleep),
        )  # fmt: skip
        lines = _wait_for_lines(log, events, timeout=events * sleep + 30)
        log.unlink(missing_ok=True)
        inside.append(sum(int(parts[3]) for parts in lines))
        return percentile(values, 99)

    figures = interleaved(db, {"alone": alone, "beside": beside}, rounds)
    results.add(f"reaction: events handled (sleep {sleep:g}s each)", len(handled), "events",
                at_least=events)  # fmt: skip
    results.add("reaction: connection-seconds in a transaction during handle",
                sampler.connection_seconds(windows), "conn*s", at_most=0)  # fmt: skip
    results.add("reaction: handle calls made inside a transaction", sum(inside), "calls", at_most=0)
    results.add("reaction: projection p99 without the reaction", figures["alone"], "ms")
    results.add("reaction: projection p99 with the sleeping reaction", figures["beside"], "ms")
    results.ratio("reaction: projection p99 with / without", figures["beside"], figures["alone"],
                  at_most=1.5)  # fmt: skip


def _wait_for_lines(log: Path, count: int, timeout: float) -> list[list[str]]:
    deadline = time.monotonic() + timeout
    while True:
        lines = [line.split() for line in log.read_text().splitlines() if line.strip()]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


# --- dismissal --------------------------------------------------------------------------

DISMISSABLE = "bench-dismissable"


def operator_token() -> str:
    """A user holding ``reactions_admin.dismiss_event`` and a fresh API token for them."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    from reactions_admin.acts.tokens.handler import issue_token

    user, _ = get_user_model().objects.get_or_create(username="bench-operator")
    user.user_permissions.add(
        Permission.objects.get(codename="dismiss_event", content_type__app_label="reactions_admin")
    )
    return issue_token(user, name="benchmarks").secret


def dismissal_targets(count: int) -> list[uuid.UUID]:
    """A reaction bookmark at the head and ``count`` events after it to dismiss in order."""
    from eventstore.store import get_event_store

    place_bookmark(DISMISSABLE, _head(), kind="reaction")
    events = [NewEvent("bench.Poison", {"n": n}) for n in range(count)]
    get_event_store().append_streams([StreamAppend(f"poison-{uuid.uuid4()}", events)])
    return [event.event_id for event in events]


def dismiss_all(targets: list[uuid.UUID], secret: str) -> list[float]:
    """POST each dismissal through the REST endpoint; return the latencies in ms."""
    from django.test import Client

    client = Client()
    url = f"/agent/reactions/{DISMISSABLE}/dismiss-event"
    headers = {"Authorization": f"Bearer {secret}"}
    latencies: list[float] = []
    for event_id in targets:
        body = json.dumps({"event_id": str(event_id), "reason": "benchmark: poison event"})
        started = time.perf_counter()
        response = client.post(url, body, content_type="application/json", headers=headers)
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(
                f"dismissal answered {response.status_code}: {response.content[:300]!r}"
            )
    return latencies


def run_dismissal(db: BenchDatabase, results: Results, *, rate: float, duration: float) -> None:
    """REST dismissals while a worker advances a projection and an appender writes."""
    secret = operator_token()
    count = max(50, int(duration * 30))
    targets = dismissal_targets(count)
    dismiss_all(targets[:5], secret)  # warm-up: imports, connection, plans
    _fresh_arrivals()
    with running_worker(db, [ARRIVALS]) as worker:
        _warm_up(worker)
        appender = Appender(rate, duration * 3).start()
        latencies = dismiss_all(targets[5:], secret)
        appender.join()
    results.add(
        f"dismissal under load: requests ({rate:g}/s appender, worker)", len(latencies), "requests"
    )
    results.add("dismissal under load p50", percentile(latencies, 50), "ms")
    results.add("dismissal under load p99", percentile(latencies, 99), "ms", below=50)
