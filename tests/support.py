"""Plain helpers for every layer (no fixtures here: those live in the conftest.py files):
a connection of a test's own, waits on observable state, reads, database triggers for
faults, calls through the doors (MCP over HTTP, a command), the admin's dismissal form, a
served ASGI app."""

from __future__ import annotations

import io
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ObjectDoesNotExist
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from eventstore.postgres import PostgresEventStore
from eventstore.types import RecordedEvent
from reactions_admin.acts.dismissal.decider import DECISION_STREAM
from subscribers.listener import listener_connection_params
from subscribers.models import Bookmark

if TYPE_CHECKING:
    import httpx2

#: The project's root: the working directory of ``manage.py`` subprocesses.
ROOT = Path(__file__).resolve().parent.parent


def raw_connection(*, autocommit: bool = True) -> psycopg.Connection[Any]:
    """A psycopg connection of its own to the test database (not Django's)."""
    return psycopg.connect(**listener_connection_params(), autocommit=autocommit)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (never 8000: two suites may run at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    """Poll ``condition`` until it is truthy; fail after a generous timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except ObjectDoesNotExist:  # a bookmark not created yet
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.05)


def wait_until_visible(events: list[RecordedEvent], timeout: float = 20.0) -> list[RecordedEvent]:
    """Wait until readers see ``events``: the horizon is cluster-wide, so a transaction
    open in another database on the same server (a concurrent test run) holds it back."""
    store, deadline = PostgresEventStore(), time.monotonic() + timeout
    while store.head() < events[-1].cursor:
        assert time.monotonic() < deadline, "the events never became visible"
        time.sleep(0.05)
    return events


def bookmark(name: str) -> Bookmark:
    """The bookmark row of subscriber ``name``, fresh from the database."""
    return Bookmark.objects.get(subscriber_name=name)


def trigger_sql(name: str, when: str, body: str, *, at_commit: bool = False) -> str:
    """SQL that creates ``name``, a plpgsql row trigger: ``body`` runs ``when`` (say "BEFORE
    INSERT ON events") for each row, then ``RETURN NEW``; ``at_commit``: a constraint
    trigger deferred to the commit. ``drop_trigger_sql(name)`` removes it."""
    kind = "CONSTRAINT TRIGGER" if at_commit else "TRIGGER"
    deferred = " DEFERRABLE INITIALLY DEFERRED" if at_commit else ""
    return (
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"BEGIN\n{body}\nRETURN NEW;\nEND $$;\n"
        f"CREATE {kind} {name} {when}{deferred} FOR EACH ROW EXECUTE FUNCTION {name}();\n"
    )


def drop_trigger_sql(name: str) -> str:
    """SQL that removes the trigger ``trigger_sql(name, ...)`` made, if it is there."""
    return f"DROP FUNCTION IF EXISTS {name}() CASCADE"


@contextmanager
def trigger(name: str, when: str, body: str, *, at_commit: bool = False) -> Iterator[None]:
    """The trigger of :func:`trigger_sql` while the block runs, dropped after it whatever
    happens (the test's own database faults: a refused append, a failing commit)."""
    with connection.cursor() as cursor:
        cursor.execute(trigger_sql(name, when, body, at_commit=at_commit))
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(drop_trigger_sql(name))


def mcp_over_http(
    base_url: str, tool: str, arguments: dict[str, Any], headers: dict[str, str]
) -> httpx2.Response:
    """One ``tools/call`` of ``tool`` over streamable HTTP at ``{base_url}/mcp``, sent with
    ``headers`` (the JSON and event-stream ``Accept`` is added)."""
    import httpx2

    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments},
    }
    headers = {"Accept": "application/json, text/event-stream", **headers}
    return httpx2.post(f"{base_url}/mcp", json=body, headers=headers, timeout=60)


def mcp_outcome(response: httpx2.Response) -> tuple[int, str]:
    """What an MCP caller over HTTP observed: the status, and the refusal's code (the
    endpoint's own gate, or the tool's error), "" when the tool succeeded."""
    if response.status_code != 200:
        return response.status_code, response.json()["code"]
    result = response.json()["result"]
    if not result["isError"]:
        return 200, ""
    return 200, json.loads(result["content"][0]["text"]).get("code", "")


def command_outcome(*args: str) -> tuple[int, str]:
    """``manage.py`` with ``args`` through ``call_command``: (0, "") when it succeeds, else
    the exit code and the message of its ``CommandError``."""
    try:
        call_command(*args, stdout=io.StringIO(), stderr=io.StringIO())
    except CommandError as refused:
        return refused.returncode, str(refused)
    return 0, ""


#: What a decision records as ``via`` for each door of the access matrices.
VIA = {"rest": "rest", "admin": "admin", "mcp-http": "mcp", "cli": "cli"}


def agent_answer(base: str, token: str, path: str, body: Any = None) -> tuple[int, str]:
    """The agent API of a served console (``base`` + ``path``) with ``token``: a GET, or a
    POST of ``body`` as JSON; the status and the text of the answer (a refusal's too)."""
    request = urllib.request.Request(
        base + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="GET" if body is None else "POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode()


def agent_call(base: str, token: str, path: str, body: Any = None) -> tuple[int, Any]:
    """:func:`agent_answer`, its answer read as JSON."""
    status, text = agent_answer(base, token, path, body)
    return status, json.loads(text)


def post_dismiss(base: str, token: str, name: str, event_id: Any, reason: str) -> tuple[int, Any]:
    """A dismissal through the REST door of a served console: its status and answer."""
    path = f"/agent/reactions/{name}/dismiss-event"
    return agent_call(base, token, path, {"event_id": str(event_id), "reason": reason})


def dismissal_form(
    reaction: str, event_id: object, reason: str, *, preview: bool = False
) -> dict[str, Any]:
    """What the admin's "Dismiss event…" form posts to the Bookmarks changelist for
    ``reaction``: the event, the reason, and its button (Preview, or Dismiss the event)."""
    button = {"preview": "Preview"} if preview else {"apply": "Dismiss the event"}
    return {
        "action": "dismiss_event",
        ACTION_CHECKBOX_NAME: [reaction],
        "event_id": str(event_id),
        "reason": reason,
        **button,
    }


def backends(application_name: str) -> int:
    """How many server sessions connected as ``application_name`` are open right now."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            [application_name],
        )
        return int(cursor.fetchone()[0])


def decisions() -> list[RecordedEvent]:
    """Every dismissal decision recorded so far, oldest first."""
    return PostgresEventStore().read_stream(DECISION_STREAM)


@contextmanager
def served_asgi() -> Iterator[str]:
    """A fresh ``config.asgi`` application (Django and /mcp) under uvicorn on a free port,
    lifespan included; yields the base URL. The server stops when the block ends."""
    import threading

    import uvicorn

    from config.asgi import build_application

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            build_application(), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
