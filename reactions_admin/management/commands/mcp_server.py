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


def served_tools() -> list[str]:
    """The names of the tools the server serves, as it lists them to a client."""
    return [tool.name for tool in anyio.run(build_mcp_server().list_tools)]


class Command(BaseCommand):
    help = "Serve the Eventdesk MCP tools over stdio, acting with an API token."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        format_help = parser.format_help

        def with_tools() -> str:
            # What ``--help`` says it serves is read from the server itself, never a list
            # kept here; and only for the help: every run parses its command line, and
            # listing the tools builds a server and runs an event loop.
            parser.epilog = f"Tools: {', '.join(served_tools())}."
            return format_help()

        parser.format_help = with_tools  # type: ignore[method-assign]
        return parser

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
