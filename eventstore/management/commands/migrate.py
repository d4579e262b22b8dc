"""Django's ``migrate``, refusing first a database part-way through a squashed history.

The system check ``eventdesk.E001`` says the same, but ``call_command("migrate")``, the test
runner and scripts skip the checks; this runs whatever the caller skips, before Django
plans anything (config/squashed.py).
"""

from __future__ import annotations

from typing import Any

from django.core.management.commands import migrate

from config.squashed import HINT, PartlyMigratedDatabase, partly_migrated


class Command(migrate.Command):
    def handle(self, *args: Any, **options: Any) -> None:
        problems = partly_migrated(options["database"])
        if problems:
            raise PartlyMigratedDatabase("; ".join(problems) + ". " + HINT)
        super().handle(*args, **options)
