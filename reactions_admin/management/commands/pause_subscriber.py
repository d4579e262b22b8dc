"""``manage.py pause_subscriber SUBSCRIBER --reason ... --as USERNAME``."""

from __future__ import annotations

from reactions_admin.acts.operations.handler import pause
from reactions_admin.doors.cli import SubscriberActionCommand


class Command(SubscriberActionCommand):
    help = (
        "Pause a subscriber: no worker starts work for it until it is resumed. "
        "Audited, with a reason."
    )
    action = staticmethod(pause)
