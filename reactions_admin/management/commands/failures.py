"""``manage.py failures``: failing items grouped by error fingerprint; act on one group."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from reactions_admin import errors
from reactions_admin.acts.act import OnFailureGroup
from reactions_admin.acts.failure_groups.handler import (
    DISMISS_FAILURE_GROUP,
    RETRY_FAILURE_GROUP,
    failure_group,
    failure_groups,
    read_groups_as_shell,
)
from reactions_admin.doors.cli import actor_named, add_actor_argument, refuse, usage_error


class Command(BaseCommand):
    help = (
        "List failing items grouped by error fingerprint (exception type and message with "
        "numbers, ids and quoted values masked). --show FP previews one group; --dismiss FP "
        "or --retry FP acts on all of it (--expect N: the count previewed; --reason; --as)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        act = parser.add_mutually_exclusive_group()
        act.add_argument("--show", metavar="FINGERPRINT")
        act.add_argument("--dismiss", metavar="FINGERPRINT")
        act.add_argument("--retry", metavar="FINGERPRINT")
        parser.add_argument("--expect", type=int, help="How many items the preview showed.")
        parser.add_argument("--reason")
        parser.add_argument("--json", action="store_true")
        add_actor_argument(parser, required=False)

    def handle(self, *args: Any, **options: Any) -> None:
        fingerprint = options["dismiss"] or options["retry"]
        if fingerprint and (options["expect"] is None or options["reason"] is None):
            usage_error("--dismiss/--retry need --expect N, --reason and --as USERNAME")
        if fingerprint and options["username"] is None:
            usage_error("--dismiss/--retry need --as USERNAME")
        try:
            if fingerprint:
                act = DISMISS_FAILURE_GROUP if options["dismiss"] else RETRY_FAILURE_GROUP
                given = OnFailureGroup(fingerprint, options["expect"], options["reason"])
                result = act(given, actor_named(options["username"]), via="cli")
                self.stdout.write(result.text())
                return
            if options["username"] is None:
                groups = read_groups_as_shell()
            else:
                groups = failure_groups(actor_named(options["username"]))
            if options["show"]:
                groups = [g for g in groups if g.fingerprint.id == options["show"]]
                if not groups:
                    failure_group(options["show"], actor_named(options["username"]))
        except errors.ReactionsError as exc:
            refuse(exc)
        if options["json"]:
            self.stdout.write(json.dumps([g.as_json() for g in groups], indent=2))
            return
        for found in groups:
            self.stdout.write(
                f"{found.fingerprint.id}  {found.count} item(s)  "
                f"{found.fingerprint.exception_type}: {found.fingerprint.pattern}"
            )
            if options["show"]:
                for item in found.items:
                    stream = f"  stream {item.stream_id}" if item.stream_id is not None else ""
                    self.stdout.write(
                        f"    {item.subscriber}  {item.event_id}{stream}  {item.error}"
                    )
