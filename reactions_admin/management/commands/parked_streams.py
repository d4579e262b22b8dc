"""``manage.py parked_streams REACTION [--dismiss-head S | --dismiss-stream S | --retry S]``.

Without an act, lists the reaction's parked streams. With one, acts as ``--as USERNAME``
(audited): dismiss the head event of stream S, dismiss the whole stream S, or retry it now.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from reactions_admin.acts.dismissal.handler import Actor
from reactions_admin.acts.parked_streams.handler import (
    dismiss_parked_stream,
    dismiss_stream_head,
    list_parked_streams,
    retry_parked_stream,
)
from reactions_admin.errors import NotAuthenticated, ReactionsError


class Command(BaseCommand):
    help = (
        "List a stream-ordered reaction's parked streams, or act on one as USERNAME (audited):"
        " dismiss its head event, dismiss the whole stream, or retry it now."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("reaction")
        act = parser.add_mutually_exclusive_group()
        act.add_argument("--dismiss-head", metavar="STREAM", help="Dismiss the head event.")
        act.add_argument("--dismiss-stream", metavar="STREAM", help="Dismiss every event.")
        act.add_argument("--retry", metavar="STREAM", help="Run the head again now.")
        parser.add_argument("--reason", default="", help="Why (required to dismiss).")
        parser.add_argument("--as", dest="username", required=True, help="The acting user.")

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["reaction"]
        try:
            user = self._user(options["username"])
            if options["dismiss_head"] is not None:
                result = dismiss_stream_head(
                    name, options["dismiss_head"], options["reason"], user, via="cli"
                )
                self.stdout.write(
                    f"Dismissed {result.event_id}, the head of stream {result.stream_id!r}"
                    f" in {name}; decision {result.decision_event_id}."
                )
            elif options["dismiss_stream"] is not None:
                dismissed = dismiss_parked_stream(
                    name, options["dismiss_stream"], options["reason"], user, via="cli"
                )
                self.stdout.write(
                    f"Dismissed stream {dismissed.stream_id!r} in {name}:"
                    f" {len(dismissed.dismissed)} event(s), one decision each."
                )
            elif options["retry"] is not None:
                retried = retry_parked_stream(
                    name, options["retry"], user, reason=options["reason"], via="cli"
                )
                self.stdout.write(
                    f"Retrying stream {retried.stream_id!r} in {name} now: event"
                    f" {retried.event_id} (attempt {retried.attempts + 1}),"
                    f" {retried.waiting} waiting behind; decision {retried.decision_event_id}."
                )
            else:
                self._list(name, user)
        except ReactionsError as exc:
            raise CommandError(f"{exc.code}: {exc.detail}", returncode=_exit_code(exc)) from exc

    def _user(self, username: str) -> Actor:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise NotAuthenticated(f"no user named {username!r}.")
        return user

    def _list(self, name: str, user: Actor) -> None:
        parked = list_parked_streams(name, user)
        if not parked:
            self.stdout.write(f"{name}: no parked stream.")
            return
        self.stdout.write(f"{name}: {len(parked)} parked stream(s)")
        for stream in parked:
            self.stdout.write(
                f"{stream['stream_id']}\thead {stream['event_id']} ({stream['event_type']})"
                f"\tattempts {stream['attempts']}\tparked since {stream['parked_at']}"
                f" (first {stream['first_parked_at']})"
                f"\t{stream['waiting']} waiting\t{stream['last_error'][:120]}"
            )


def _exit_code(exc: ReactionsError) -> int:
    # As dismiss_event: 3 for a refusal, 4 when unavailable (2 is argparse's usage error).
    return 4 if exc.status >= 500 else 3
