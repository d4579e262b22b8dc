"""Deploy checks of Eventdesk's own settings (``manage.py check --deploy``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def check_secret_key_from_environment(
    app_configs: Sequence[AppConfig] | None = None, **_: Any
) -> list[checks.CheckMessage]:
    """Without ``DJANGO_SECRET_KEY`` each host makes a key of its own in ``.data/``: a
    session or CSRF token made by one console process is refused by another, and a unit
    under ``ProtectSystem=strict`` cannot write it at all (docs/deployment.md)."""
    if not getattr(settings, "SECRET_KEY_MADE_HERE", False):
        return []
    return [
        checks.Warning(
            "DJANGO_SECRET_KEY is not set: this process uses a key it made for itself in"
            " .data/secret-key.",
            hint="Set DJANGO_SECRET_KEY to one secret, the same on every host"
            " (docs/deployment.md, Settings).",
            id="eventdesk.W001",
        )
    ]
