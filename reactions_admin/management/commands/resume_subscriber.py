"""``manage.py resume_subscriber SUBSCRIBER --reason ... --as USERNAME``."""

from __future__ import annotations

from reactions_admin.cli import SubscriberActionCommand
from reactions_admin.operate import resume


class Command(SubscriberActionCommand):
    help = "Resume a paused subscriber with the status it had. Audited, with a reason."
    action = staticmethod(resume)
