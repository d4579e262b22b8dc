"""``manage.py resume_subscriber SUBSCRIBER --reason ... --as USERNAME``."""

from __future__ import annotations

from reactions_admin.acts.operations.handler import RESUME
from reactions_admin.doors.cli import ActCommand


class Command(ActCommand):
    act = RESUME
