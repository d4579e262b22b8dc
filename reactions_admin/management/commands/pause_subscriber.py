"""``manage.py pause_subscriber SUBSCRIBER --reason ... --as USERNAME``."""

from __future__ import annotations

from reactions_admin.acts.operations.handler import PAUSE
from reactions_admin.doors.cli import ActCommand


class Command(ActCommand):
    act = PAUSE
