"""``manage.py dismiss_event REACTION EVENT_ID --reason ... --as USERNAME``."""

from __future__ import annotations

from reactions_admin.acts.dismissal.handler import DISMISS_EVENT
from reactions_admin.doors.cli import ActCommand


class Command(ActCommand):
    act = DISMISS_EVENT
