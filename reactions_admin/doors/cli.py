"""What the console's commands share: who acts (``--as``), and refusals as exit statuses."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, ClassVar, NoReturn

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.management.base import BaseCommand, CommandError, CommandParser

from reactions_admin import errors
from reactions_admin.acts.act import Act
from reactions_admin.guards import Actor


def add_actor_argument(parser: CommandParser, *, required: bool = True, acts: bool = True) -> None:
    """``--as USERNAME``: the user the command acts as (checked like any other door).
    ``required=False``: the command also reads without one, as the shell's account;
    ``acts=False``: it only reads (its help then says nothing of acts)."""
    needed = "." if required else ("; an act needs one." if acts else ".")
    reads = "" if required else " Without it, the command reads as the shell's account."
    parser.add_argument(
        "--as",
        dest="username",
        required=required,
        help=f"The acting user (their permissions apply){needed}{reads}",
    )


def option(name: str) -> str:
    """The option ``name`` as one types it: ``roll_back`` is ``--roll-back``."""
    return f"--{name.replace('_', '-')}"


def actor_named(username: str | None) -> Actor:
    """The user named ``username``; 401 ``not_authenticated`` for no such user."""
    if username is None:
        return AnonymousUser()
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise errors.NotAuthenticated(f"no user named {username!r}.")
    return user


#: The exit status of a command line that is refused before anything runs: argparse's, for
#: a required option left out (``dismiss_event`` without ``--reason``).
USAGE_ERROR = 2


def refuse(exc: errors.ReactionsError) -> NoReturn:
    """Exit with the refusal's code and detail: status 3 (the caller's fault) or 4
    (unavailable; try again). 2 stays the usage error (``usage_error``)."""
    raise CommandError(f"{exc.code}: {exc.detail}", returncode=4 if exc.status >= 500 else 3)


def usage_error(message: str) -> NoReturn:
    """Exit with status 2, as argparse does for a required option left out, for an option
    that only another one requires (``--swap`` needs ``--reason``): argparse cannot say so."""
    raise CommandError(message, returncode=USAGE_ERROR)


class ActCommand(BaseCommand):
    """How the command line adapts an act: the input's fields are the positional
    arguments (the reason is ``--reason``), then ``--as USERNAME``; ``act`` runs, or the
    act of the one flag given among ``flags`` (``{"swap": SWAP}`` adds ``--swap``, for
    acts that take the same input). One line out, the result's ``text()``; a refusal is
    exit status 3 or 4 with its code."""

    act: Act[Any, Any]
    #: Option name (``_`` for ``-``) -> the act it runs instead of ``act``.
    flags: ClassVar[dict[str, Act[Any, Any]]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = self.act.doc

    def add_arguments(self, parser: CommandParser) -> None:
        for field in fields(self.act.input):
            if field.name != "reason":
                parser.add_argument(field.name, metavar=field.name.upper())
        required = errors.ReasonRequired in self.act.refusals
        parser.add_argument("--reason", required=required, default="", help="Why (audited).")
        add_actor_argument(parser)
        if self.flags:
            chosen = parser.add_mutually_exclusive_group()
            for flag, act in self.flags.items():
                chosen.add_argument(option(flag), action="store_true", help=act.doc)

    def handle(self, *args: Any, **options: Any) -> None:
        act = next((a for flag, a in self.flags.items() if options[flag]), self.act)
        given = act.input(**{field.name: options[field.name] for field in fields(act.input)})
        try:
            result = act(given, actor_named(options["username"]), via="cli")
        except errors.ReactionsError as exc:
            refuse(exc)
        self.stdout.write(result.text())
