"""``manage.py create_api_token USERNAME [--as OPERATOR]``: issue an API token and print its
secret, once. Audited as ``TokenCreated``, by OPERATOR or by the operating-system account."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from reactions_admin.acts.tokens.handler import issue_token
from reactions_admin.management.acting import acting_user


class Command(BaseCommand):
    help = "Create an API token for USERNAME and print it (only now: it is stored hashed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="A label, e.g. where the token is used.")
        parser.add_argument(
            "--as", dest="acting", help="The operator the audit names (default: the OS account)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user named {options['username']!r}.")
        if not user.is_active:
            raise CommandError(f"User {user.get_username()!r} is inactive.")
        issued = issue_token(user, name=options["name"], actor=acting_user(options), via="cli")
        self.stderr.write(
            f"Token {issued.token.prefix}… for {user.get_username()} — shown once, keep it safe:"
        )
        self.stdout.write(issued.secret)
