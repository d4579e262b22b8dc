"""``manage.py retry_now SUBSCRIBER --reason ... --as USERNAME``."""

from __future__ import annotations

from reactions_admin.acts.operations.handler import retry_now
from reactions_admin.doors.cli import SubscriberActionCommand


class Command(SubscriberActionCommand):
    help = (
        "Retry now: a retrying or wedged subscriber attempts its failing event at once "
        "(attempts kept). Audited."
    )
    action = staticmethod(retry_now)
