"""``manage.py retry_now SUBSCRIBER --reason ... --as USERNAME``."""

from __future__ import annotations

from reactions_admin.acts.operations.handler import RETRY_NOW
from reactions_admin.doors.cli import ActCommand


class Command(ActCommand):
    act = RETRY_NOW
