"""What the console's commands share: who acts (``--as``), and refusals as exit statuses."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.management.base import BaseCommand, CommandError, CommandParser

from reactions_admin import errors
from reactions_admin.doors.access import Actor

if TYPE_CHECKING:
    from reactions_admin.acts.operations.handler import ActionResult


def add_actor_argument(parser: CommandParser, *, required: bool = True) -> None:
    """``--as USERNAME``: the user the command acts as (checked like any other door)."""
    parser.add_argument(
        "--as",
        dest="username",
        required=required,
        help="The acting user (their permissions apply)."
        + ("" if required else " Without it, the shell's account reads."),
    )


def actor_named(username: str | None) -> Actor:
    """The user named ``username``; 401 ``not_authenticated`` for no such user."""
    if username is None:
        return AnonymousUser()
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise errors.NotAuthenticated(f"no user named {username!r}.")
    return user


def refuse(exc: errors.ReactionsError) -> NoReturn:
    """Exit with the refusal's code and detail: status 3 (the caller's fault) or 4
    (unavailable; try again). 2 stays argparse's usage error."""
    raise CommandError(f"{exc.code}: {exc.detail}", returncode=4 if exc.status >= 500 else 3)


class SubscriberActionCommand(BaseCommand):
    """``SUBSCRIBER --reason ... --as USERNAME``, one handler of the operations act
    (``reactions_admin.acts.operations.handler``), one line out: the shape of
    ``pause_subscriber``, ``resume_subscriber`` and ``retry_now``."""

    #: The handler: (subscriber, reason, actor, via=...) -> ActionResult.
    action: Callable[..., ActionResult]

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("subscriber")
        parser.add_argument("--reason", required=True)
        add_actor_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            actor = actor_named(options["username"])
            result = type(self).action(options["subscriber"], options["reason"], actor, via="cli")
        except errors.ReactionsError as exc:
            refuse(exc)
        self.stdout.write(
            f"{result.choice} {result.subscriber_name}: {result.status_before} → "
            f"{result.status_after}; decision {result.decision_event_id}."
        )
