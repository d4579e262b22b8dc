"""``manage.py parked_streams REACTION [--dismiss-head S | --dismiss-stream S | --retry S]``.

Without an act, lists the reaction's parked streams. With one, acts as ``--as USERNAME``
(audited): dismiss the head event of stream S, dismiss the whole stream S, or retry it now.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from reactions_admin.acts.act import Act, OnStream
from reactions_admin.acts.parked_streams.handler import (
    DISMISS_PARKED_STREAM,
    DISMISS_STREAM_HEAD,
    RETRY_PARKED_STREAM,
)
from reactions_admin.doors.cli import actor_named, refuse
from reactions_admin.errors import ReactionsError
from reactions_admin.guards import Actor
from reactions_admin.reads.reactions import list_parked_streams

#: Each option names a stream, and the act to run on it.
ACTS: dict[str, Act[OnStream, Any]] = {
    "dismiss_head": DISMISS_STREAM_HEAD,
    "dismiss_stream": DISMISS_PARKED_STREAM,
    "retry": RETRY_PARKED_STREAM,
}


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
            user = actor_named(options["username"])
            for option, act in ACTS.items():
                if options[option] is not None:
                    given = OnStream(name, options[option], options["reason"])
                    self.stdout.write(act(given, user, via="cli").text())
                    return
            self._list(name, user)
        except ReactionsError as exc:
            refuse(exc)

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
