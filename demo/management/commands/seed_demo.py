"""``manage.py seed_demo``: append the demo's agent-run history (once)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from demo.history import FIRST_RUN, demo_history
from eventstore import ConcurrencyError
from eventstore.store import get_event_store


class Command(BaseCommand):
    help = (
        "Append a small agent-run history (runs, steps, cautions, and one poison caution the "
        "CautionDrafter fails on every time). Does nothing if the history is already there."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        store = get_event_store()
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
