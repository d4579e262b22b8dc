"""``manage.py mcp_server``: the Eventdesk MCP server over stdio.

It acts as the owner of one API token: ``--token`` or ``EVENTDESK_API_TOKEN``.
"""

from __future__ import annotations

from typing import Any

import anyio
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from config.options import options as eventdesk_options
from reactions_admin.acts.tokens.handler import user_for_token
from reactions_admin.doors.mcp.server import build_mcp_server


class Command(BaseCommand):
    help = "Serve the Eventdesk MCP tools over stdio, acting with an API token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--token", help="An API token (default: EVENTDESK_API_TOKEN).")

    def handle(self, *args: Any, **options: Any) -> None:
        token: str = options["token"] or eventdesk_options().api_token
        if not token:
            raise CommandError("Give an API token: --token or EVENTDESK_API_TOKEN.")
        user = user_for_token(token)
        if user is None:
            raise CommandError("not_authenticated: the API token is unknown or revoked.")
        connection.close()  # the tools run on their own thread and connection
        self.stderr.write(f"Eventdesk MCP server on stdio, acting as {user.get_username()}.")
        anyio.run(build_mcp_server(token=token).run_stdio_async)
