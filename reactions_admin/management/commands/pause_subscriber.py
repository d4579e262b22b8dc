"""``manage.py pause_subscriber SUBSCRIBER --reason ... --as USERNAME``."""

from __future__ import annotations

from reactions_admin.cli import SubscriberActionCommand
from reactions_admin.operate import pause


class Command(SubscriberActionCommand):
    help = (
        "Pause a subscriber: no worker starts work for it until it is resumed. "
        "Audited, with a reason."
    )
    action = staticmethod(pause)
