"""What the console's commands share: who acts (``--as``), and refusals as exit statuses."""

from __future__ import annotations

from typing import NoReturn

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.management.base import CommandError, CommandParser

from reactions_admin import errors
from reactions_admin.doors import Actor


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
