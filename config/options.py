"""Eventdesk's own options: one typed object, read from Django settings.

Each option has a default, may be set in ``settings.EVENTDESK`` (a dict keyed by
the field name) and is overridden by an ``EVENTDESK_<NAME>`` environment
variable. This is the only place Eventdesk reads its options from the
environment.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping
from typing import Any, Literal, get_args

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver


@dataclasses.dataclass(frozen=True)
class EventdeskOptions:
    """Every tunable of Eventdesk, with its default."""

    #: "postgres" (the real store) or "memory" (the in-memory fake, for unit tests).
    event_store: Literal["postgres", "memory"] = "postgres"
    #: Dotted paths of the subscribers the worker runs.
    subscribers: tuple[str, ...] = ()
    #: Attempts on one event before a bookmark is wedged.
    max_attempts: int = 5
    #: Exponential backoff between attempts: base * 2**(attempt-1), capped.
    retry_base_seconds: float = 1.0
    retry_cap_seconds: float = 300.0
    #: Polling interval: the safety net under LISTEN/NOTIFY.
    poll_interval_seconds: float = 5.0
    #: The connection the worker LISTENs on (EVENTDESK_LISTEN_DATABASE_URL), a
    #: postgresql:// URL; empty: Django's default database. Point it at PostgreSQL
    #: directly (or at a session-mode pool) when DATABASE_URL goes through a
    #: transaction-mode pooler, which cannot carry LISTEN.
    listen_database_url: str = dataclasses.field(default="", repr=False)
    #: How often the worker proves its wake-ups arrive (a NOTIFY of its own through the
    #: ordinary connection), besides at start and after each reconnection.
    wakeup_check_seconds: float = 180.0
    #: How long a reaction's lease lasts before another worker may take it over.
    lease_seconds: float = 120.0
    #: How long a reaction's ``handle`` may run before the attempt counts as failed (its
    #: thread is abandoned and its result discarded). A reaction may declare its own.
    handle_timeout_seconds: float = 300.0
    #: How long a projection batch may run before the worker gives up on it.
    batch_timeout_seconds: float = 60.0
    #: A projection batch's commit waits for the disk (synchronous_commit as the server
    #: has it). Off: it does not; a server crash may lose the last batches, writes and
    #: bookmark together, which are then applied again (docs/projections.md).
    projection_commit_waits_for_flush: bool = False
    #: How long the worker waits for the current batch on SIGTERM/SIGINT.
    shutdown_timeout_seconds: float = 30.0
    #: How often a subscriber catching up on a backlog logs its progress.
    progress_interval_seconds: float = 5.0
    #: Latency of the demo's deterministic fake LLM.
    demo_llm_latency_seconds: float = 0.5
    #: The demo reactions' LLM client: a dotted path to a class taking no arguments.
    demo_llm_client: str = "demo.llm.FakeLLM"
    #: Serve the console's ``/metrics`` without credentials (a Prometheus on a private
    #: network). Off: a Bearer API token or a session of a user who may view bookmarks.
    metrics_public: bool = False
    #: How often the worker samples each subscriber's position and lag (the lag trend).
    history_sample_seconds: float = 5.0
    #: How long those samples are kept; older ones are pruned by the worker.
    history_retention_seconds: float = 86_400.0
    #: The API token ``manage.py mcp_server`` (stdio) acts with (EVENTDESK_API_TOKEN).
    api_token: str = dataclasses.field(default="", repr=False)
    #: How long the tables a rebuild's swap moved aside are kept for a roll back (hours).
    rebuild_keep_hours: float = 24.0
    #: Events per rebuild batch at most (it shrinks to keep each transaction short).
    rebuild_batch_size: int = 1000
    #: ``run_subscribers`` runs its rebuilds in a child process of its own (off: in a
    #: thread, sharing the live loops' interpreter; subscribers/rebuilds/process.py).
    rebuild_process: bool = True
    #: How much lower the rebuild process's CPU priority is (``nice``, 0-19).
    rebuild_nice: int = 10
    #: The demo's projections with their bugs fixed (the rebuild story: seed with the bug,
    #: restart the worker with the fix, rebuild; EVENTDESK_DEMO_FIXED_PROJECTIONS=1).
    demo_fixed_projections: bool = False
    #: Where people reach the console, ``https://host[:port]``, served over HTTPS behind a
    #: proxy: Django's hosts, CSRF origin, secure cookies, HSTS and redirect follow from it
    #: (config/public_url.py, docs/deployment.md). Empty: plain HTTP, as ``make run``.
    public_url: str = ""
    #: Opt-in, with public_url: a header the TLS-terminating proxy sets to "https" that
    #: Django then believes from anyone (X-Forwarded-Proto), safe only when nothing but
    #: the proxy reaches the console. Empty: uvicorn's --forwarded-allow-ips decides.
    proxy_ssl_header: str = ""
    #: HSTS max-age with public_url (a year; lower it while trying HTTPS out).
    hsts_seconds: int = 31_536_000

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ImproperlyConfigured("Eventdesk option max_attempts must be at least 1")
        if not 0 <= self.rebuild_nice <= 19:
            raise ImproperlyConfigured("Eventdesk option rebuild_nice must be from 0 to 19")
        if self.hsts_seconds < 0:
            raise ImproperlyConfigured("Eventdesk option hsts_seconds must not be negative")
        if self.proxy_ssl_header and not self.public_url:
            raise ImproperlyConfigured(
                "Eventdesk option proxy_ssl_header needs public_url (EVENTDESK_PUBLIC_URL)"
            )
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.type == "float" and value <= 0:
                raise ImproperlyConfigured(f"Eventdesk option {field.name} must be positive")


def _convert(name: str, raw: Any, annotation: Any) -> Any:
    text = str(raw)
    try:
        if annotation == "int":
            return int(raw)
        if annotation == "float":
            return float(raw)
        if annotation == "bool":
            return _boolean(raw)
        if annotation == "tuple[str, ...]":
            if isinstance(raw, list | tuple):
                return tuple(str(item) for item in raw)
            return tuple(item.strip() for item in text.split(",") if item.strip())
        if annotation.startswith("Literal"):
            allowed = get_args(eval(annotation, {"Literal": Literal}))  # our own annotation
            if text not in allowed:
                raise ValueError(f"must be one of {', '.join(allowed)}")
            return text
    except ValueError as exc:
        raise ImproperlyConfigured(f"Eventdesk option {name}={text!r}: {exc}") from exc
    return raw


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("must be true or false (1/0, yes/no, on/off)")


@functools.cache
def options() -> EventdeskOptions:
    """The options in force (cached; cleared when tests override settings)."""
    return resolve(getattr(settings, "EVENTDESK", {}))


def resolve(eventdesk: Mapping[str, Any]) -> EventdeskOptions:
    """The options from a ``settings.EVENTDESK`` dict and the environment. settings.py
    calls it itself, for the Django settings that follow from Eventdesk's (public_url)."""
    configured: dict[str, Any] = dict(eventdesk)
    fields = {field.name: field for field in dataclasses.fields(EventdeskOptions)}
    unknown = set(configured) - set(fields)
    if unknown:
        raise ImproperlyConfigured(f"Unknown EVENTDESK settings: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for name, field in fields.items():
        env = os.environ.get(f"EVENTDESK_{name.upper()}")
        raw = env if env is not None else configured.get(name)
        if raw is not None:
            values[name] = _convert(name, raw, field.type)
    return EventdeskOptions(**values)


@receiver(setting_changed)
def _reset(*, setting: str, **_: Any) -> None:
    if setting == "EVENTDESK":
        options.cache_clear()
