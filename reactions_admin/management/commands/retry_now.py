"""``manage.py retry_now SUBSCRIBER --reason ... --as USERNAME``."""

from __future__ import annotations

from reactions_admin.acts.operations.handler import RETRY_NOW
from reactions_admin.doors.cli import SubscriberActCommand


class Command(SubscriberActCommand):
    act = RETRY_NOW
