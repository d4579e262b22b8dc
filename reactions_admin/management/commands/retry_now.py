"""``manage.py retry_now SUBSCRIBER --reason ... --as USERNAME``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from reactions_admin import errors
from reactions_admin.cli import actor_named, add_actor_argument, refuse
from reactions_admin.operate import retry_now


class Command(BaseCommand):
    help = (
        "Retry now: a retrying or wedged subscriber attempts its failing event at once "
        "(attempts kept). Audited."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("subscriber")
        parser.add_argument("--reason", required=True)
        add_actor_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            actor = actor_named(options["username"])
            result = retry_now(options["subscriber"], options["reason"], actor, via="cli")
        except errors.ReactionsError as exc:
            refuse(exc)
        self.stdout.write(
            f"{result.choice} {result.subscriber_name}: {result.status_before} → "
            f"{result.status_after}; decision {result.decision_event_id}."
        )
