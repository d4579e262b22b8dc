"""``manage.py dismiss_event REACTION EVENT_ID --reason ... --as USERNAME``."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from reactions_admin.acts.dismissal.handler import dismiss_event_in_reaction
from reactions_admin.errors import NotAuthenticated, ReactionsError


class Command(BaseCommand):
    help = "Dismiss a poison event in a wedged reaction, as USERNAME, with a reason (audited)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("reaction")
        parser.add_argument("event_id")
        parser.add_argument("--reason", required=True)
        parser.add_argument("--as", dest="username", required=True, help="The acting user.")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        try:
            if user is None:
                raise NotAuthenticated(f"no user named {options['username']!r}.")
            result = dismiss_event_in_reaction(
                options["reaction"], options["event_id"], options["reason"], user, via="cli"
            )
        except ReactionsError as exc:
            raise CommandError(f"{exc.code}: {exc.detail}", returncode=_exit_code(exc)) from exc
        self.stdout.write(
            f"Dismissed {result.event_id} in {result.subscriber_name}: {result.cursor_before} → "
            f"{result.cursor_after}, {result.passed_over_text()} passed over; "
            f"decision {result.decision_event_id}."
        )


def _exit_code(exc: ReactionsError) -> int:
    # 2 is argparse's usage error; refusals get 3 (client-side) or 4 (unavailable).
    return 4 if exc.status >= 500 else 3
