"""``manage.py revoke_api_token PREFIX`` or ``--user USERNAME --all``: revoke API tokens,
for good. Audited as ``TokenRevoked``, by ``--as OPERATOR`` or by the operating-system account."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reactions_admin.acts.tokens.handler import PREFIX_LENGTH, revoke_tokens
from reactions_admin.management.acting import acting_user


class Command(BaseCommand):
    help = "Revoke an API token by its prefix (or whole secret), or every token of a user."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prefix", nargs="?", help="The token's prefix, as the admin shows it.")
        parser.add_argument("--user", dest="username", help="Revoke every live token of this user.")
        parser.add_argument("--all", action="store_true", help="With --user: confirm revoking all.")
        parser.add_argument(
            "--as", dest="acting", help="The operator the audit names (default: the OS account)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        prefix: str | None = options["prefix"]
        username: str | None = options["username"]
        actor = acting_user(options)
        if prefix:
            if len(prefix) < PREFIX_LENGTH:
                raise CommandError(f"Give the whole prefix ({PREFIX_LENGTH} characters).")
            count = revoke_tokens(prefix=prefix, username=username, actor=actor, via="cli")
        elif username and options["all"]:
            count = revoke_tokens(username=username, actor=actor, via="cli")
        else:
            raise CommandError("Give a token PREFIX, or --user USERNAME --all.")
        if count == 0:
            raise CommandError("No live token matched.")
        self.stdout.write(f"Revoked {count} token(s).")
