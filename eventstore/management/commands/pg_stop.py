"""``manage.py pg_stop``: stop the embedded PostgreSQL server."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from config import embedded_pg


class Command(BaseCommand):
    help = "Stop the embedded PostgreSQL server (it starts again on the next connection)."

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.DATABASES["default"]["ENGINE"] != "config.embedded_backend":
            raise CommandError("DATABASE_URL is set: there is no embedded server to stop.")
        if embedded_pg.stop():
            self.stdout.write("Embedded PostgreSQL stopped.")
        else:
            self.stdout.write("Embedded PostgreSQL was not running.")
