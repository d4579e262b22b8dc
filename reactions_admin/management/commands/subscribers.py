"""``manage.py subscribers``: every subscriber, its status, lag and diagnosis."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from reactions_admin import errors
from reactions_admin.doors.cli import actor_named, add_actor_argument, refuse
from reactions_admin.reads.overview import SubscriberReport, overview, read_as_shell


class Command(BaseCommand):
    help = (
        "List every subscriber (projections and reactions): name, kind, status, lag, failing "
        "event id and the diagnosis (why it is behind), with the counts at the top."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("names", nargs="*", help="Only these subscribers.")
        parser.add_argument("--json", action="store_true", help="Print JSON (as the REST API).")
        add_actor_argument(parser, required=False, acts=False)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["username"] is None:
                seen = read_as_shell()
            else:
                seen = overview(actor_named(options["username"]))
        except errors.ReactionsError as exc:
            refuse(exc)
        reports = [r for r in seen.reports if not options["names"] or r.name in options["names"]]
        if options["json"]:
            payload = seen.as_json()
            payload["subscribers"] = [report.as_json() for report in reports]
            self.stdout.write(json.dumps(payload, indent=2))
            return
        c = seen.counts
        self.stdout.write(
            f"{c.total} subscriber(s): {c.wedged} wedged, {c.retrying} retrying, "
            f"{c.paused} paused, {c.stalled} stalled"
        )
        rows = [("NAME", "KIND", "STATUS", "LAG", "FAILING EVENT", "DIAGNOSIS")]
        rows += [_row(report) for report in reports]
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        rebuilds = {report.name: report.rebuild_text for report in reports if report.rebuild}
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            self.stdout.write("  ".join([*cells, row[5]]))
            if row[0] in rebuilds:  # a projection's rebuild in progress, under its row
                self.stdout.write(" " * (widths[0] + 2) + rebuilds[row[0]])


def _row(report: SubscriberReport) -> tuple[str, str, str, str, str, str]:
    b = report.bookmark
    lag = f"{report.facts.lag}{'+' if report.facts.lag_capped else ''}"
    failing = str(b.failing_event_id) if b.failing_event_id else "-"
    return (b.subscriber_name, b.kind, b.status, lag, failing, report.diagnosis.summary)
