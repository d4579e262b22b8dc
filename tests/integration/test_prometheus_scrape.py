"""A real Prometheus (Debian's package) scrapes a served console and a worker process.

The console runs under uvicorn as `make run` serves it, the worker is `run_subscribers
--metrics-port`, and Prometheus has its own config, data directory and free port, with
docs/alerts.yml loaded. A reaction is wedged on a poison event; the test then asks
Prometheus's HTTP API what it saw: the wedge in the status gauge, lag and the handled
counter moving, the wedge alert *pending* (promtool's unit tests prove *firing*).
"""

from __future__ import annotations

import json
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reactions_admin.acts.tokens.handler import issue_token
from tests.conftest import ServedConsole
from tests.factories import append, operator
from tests.support import ROOT, free_port, wait_for
from tests.workers import start_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]

REACTION = "tests.subscribers.EchoReaction"


class Prometheus:
    """A ``prometheus`` process of the test's own, and its query API."""

    def __init__(self, binary: str, workdir: Path, targets: dict[str, Any]) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = workdir / "prometheus.yml"
        config.write_text(
            json.dumps(  # JSON is YAML
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(ROOT / "docs" / "alerts.yml")],
                    "scrape_configs": list(targets.values()),
                }
            )
        )
        self.log = workdir / "prometheus.log"
        with open(self.log, "wb") as output:
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        wait_for(self._ready, timeout=60, what=f"prometheus ready:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def _ready(self) -> bool:
        assert self.process.poll() is None, f"prometheus exited:\n{self.output()}"
        try:
            with urllib.request.urlopen(self.base + "/-/ready", timeout=5) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.base}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    def values(self, query: str) -> list[float]:
        """The instant values of ``query`` now."""
        return [float(item["value"][1]) for item in self.api("query", query=query)["result"]]

    def alert_state(self, name: str) -> str | None:
        states = [
            a["state"] for a in self.api("alerts")["alerts"] if a["labels"]["alertname"] == name
        ]
        return states[0] if states else None

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def prometheus(prometheus_binary: str, tmp_path: Path) -> Iterator[Callable[..., Prometheus]]:
    started: list[Prometheus] = []

    def start(targets: dict[str, Any]) -> Prometheus:
        server = Prometheus(prometheus_binary, tmp_path, targets)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def test_prometheus_sees_the_wedge_the_lag_and_the_counters(
    launch_console: Callable[..., ServedConsole],
    processes: list[subprocess.Popen[bytes]],
    prometheus: Callable[..., Prometheus],
    applied_table: None,
    tmp_path: Path,
) -> None:
    secret = issue_token(operator("prometheus")).secret
    console = launch_console(EVENTDESK_SUBSCRIBERS=REACTION)
    metrics_port = free_port()
    worker = start_worker(
        [REACTION], "--metrics-port", str(metrics_port), log=tmp_path / "worker.log",
        max_attempts="2", retry_base_seconds="0.2",
    )  # fmt: skip
    processes.append(worker)
    console_host = console.base_url.removeprefix("http://")
    server = prometheus(
        {
            "console": {
                "job_name": "eventdesk-console",
                "metrics_path": "/metrics",
                "authorization": {"type": "Bearer", "credentials": secret},
                "static_configs": [{"targets": [console_host]}],
            },
            "worker": {
                "job_name": "eventdesk-workers",
                "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}],
            },
        }
    )

    def up(job: str) -> bool:
        return server.values(f'up{{job="{job}"}}') == [1.0]

    wait_for(lambda: up("eventdesk-console") and up("eventdesk-workers"), timeout=60,
             what=f"both targets up\n{server.output()}\n{console.output()}")  # fmt: skip
    status = 'eventdesk_subscriber_status{subscriber="test.echo",status="%s"}'
    wait_for(lambda: server.values(status % "active") == [1.0], what="the reaction active")

    # One ping answered: the handled counter moves.
    append("pings", "Ping")
    handled = 'eventdesk_worker_events_handled_total{subscriber="test.echo"}'
    wait_for(lambda: server.values(handled) == [1.0], what="one event handled, seen by Prometheus")
    lag = 'eventdesk_subscriber_lag_events{subscriber="test.echo"}'
    wait_for(lambda: server.values(lag) == [0.0], what="no lag once handled")

    # A poison ping wedges it (two attempts): lag stays, the status says wedged.
    append("pings", "Ping", poison=True)
    wait_for(lambda: server.values(status % "wedged") == [1.0], timeout=60,
             what="the wedge seen by Prometheus")  # fmt: skip
    assert server.values(status % "active") == [0.0]
    assert server.values(lag) == [1.0]
    wait_for(lambda: server.values(f'{lag.replace("lag_events", "lag_seconds")} > 0'),
             what="lag in seconds above 0")  # fmt: skip
    failures = 'eventdesk_worker_failures_total{subscriber="test.echo"}'
    wait_for(lambda: server.values(failures) == [2.0], what="both failed attempts counted")
    wedges = 'eventdesk_worker_wedges_total{subscriber="test.echo"}'
    wait_for(lambda: server.values(wedges) == [1.0], what="the wedge counted by the worker")

    # The rule of docs/alerts.yml picks it up: pending for its `for: 1m`.
    wait_for(lambda: server.alert_state("EventdeskSubscriberWedged") == "pending", timeout=60,
             what="the wedge alert pending")  # fmt: skip
    # A worker runs it, so the no-live-worker alert stays quiet.
    assert server.alert_state("EventdeskNoLiveWorker") is None

    worker.terminate()
    assert worker.wait(60) == 0
