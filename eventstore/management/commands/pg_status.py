"""``manage.py pg_status``: where the embedded PostgreSQL lives and whether it runs."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from config import embedded_pg


class Command(BaseCommand):
    help = "Show the embedded PostgreSQL server's status and where it keeps its files."

    def handle(self, *args: Any, **options: Any) -> None:
        database = settings.DATABASES["default"]
        if database["ENGINE"] != "config.embedded_backend":
            self.stdout.write(
                f"DATABASE_URL is set: Eventdesk uses {database['HOST'] or 'localhost'}"
                f":{database['PORT'] or 5432}/{database['NAME']}; the embedded server is not used."
            )
            return
        state = embedded_pg.status()
        layout = state.layout
        lines = [
            f"state:      {f'running (pid {state.pid})' if state.running else 'stopped'}",
            f"data:       {layout.pgdata}{'' if state.initialized else ' (not initialised yet)'}",
            f"socket:     {layout.socket_dir} (port {embedded_pg.PORT})",
            f"binaries:   {layout.bin_dir}",
            f"log:        {layout.log_file}",
            f"runs as:    {layout.run_as or 'the current user'}",
            f"database:   {database['NAME']} (user {database['USER']})",
        ]
        if layout.outside_tree:
            lines.append(
                "note:       the server user cannot reach this project's directory, so the "
                f"server's binaries and data live outside the tree, under {layout.root}"
            )
        self.stdout.write("\n".join(lines))
