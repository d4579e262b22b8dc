"""``manage.py pg_start``: start the embedded PostgreSQL server (idempotent)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from config import embedded_pg


class Command(BaseCommand):
    help = "Start the embedded PostgreSQL server, or reuse the one already running."

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.DATABASES["default"]["ENGINE"] != "config.embedded_backend":
            raise CommandError("DATABASE_URL is set: there is no embedded server to start.")
        try:
            layout = embedded_pg.ensure_running()
        except embedded_pg.EmbeddedServerError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Embedded PostgreSQL running; socket in {layout.socket_dir}.")
