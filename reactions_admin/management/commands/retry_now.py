"""``manage.py retry_now SUBSCRIBER --reason ... --as USERNAME``."""

from __future__ import annotations

from reactions_admin.cli import SubscriberActionCommand
from reactions_admin.operate import retry_now


class Command(SubscriberActionCommand):
    help = (
        "Retry now: a retrying or wedged subscriber attempts its failing event at once "
        "(attempts kept). Audited."
    )
    action = staticmethod(retry_now)
