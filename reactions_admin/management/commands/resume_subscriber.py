"""``manage.py resume_subscriber SUBSCRIBER --reason ... --as USERNAME``."""

from __future__ import annotations

from reactions_admin.acts.operations.handler import resume
from reactions_admin.doors.cli import SubscriberActionCommand


class Command(SubscriberActionCommand):
    help = "Resume a paused subscriber with the status it had. Audited, with a reason."
    action = staticmethod(resume)
