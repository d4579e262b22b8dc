"""``manage.py seed_demo``: append the demo's agent-run history (once); ``--poison``
appends a fresh poison caution, so the wedge-and-dismiss story can be shown again."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from demo.history import FIRST_RUN, demo_history, fresh_poison
from eventstore import ConcurrencyError
from eventstore.store import get_event_store


class Command(BaseCommand):
    help = (
        "Append a small agent-run history (runs, steps, cautions, and one poison caution the "
        "CautionDrafter fails on every time). Does nothing if the history is already there."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--poison",
            action="store_true",
            help="Append a fresh poison caution (a new run) that the CautionDrafter wedges on, "
            "to show the wedge-and-dismiss story again without a new database.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        store = get_event_store()
        if options["poison"]:
            self._poison(store)
            return
        if store.read_stream(FIRST_RUN, limit=1):
            self.stdout.write("The demo history is already there; nothing appended.")
            return
        count = 0
        try:
            for appends in demo_history():
                count += len(store.append_streams(appends))
        except ConcurrencyError:
            self.stdout.write("Another process is seeding the demo; nothing more appended.")
            return
        self.stdout.write(f"Appended the demo history: {count} events.")

    def _poison(self, store: Any) -> None:
        for number in range(1, 10_000):
            try:
                [_, poison] = store.append_streams([fresh_poison(number)])
            except ConcurrencyError:
                continue  # that run exists already (an earlier --poison): the next number
            self.stdout.write(
                f"Appended a fresh poison caution: event {poison.event_id} on {poison.stream_id}."
                " The CautionDrafter wedges on it once a worker reaches it."
            )
            return
