"""``seed_demo --poison``: the wedge-and-dismiss story can be shown again on the same
database."""

from __future__ import annotations

import io

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

from eventstore.models import Event
from reactions_admin.acts.dismissal.handler import dismiss_event_in_reaction
from subscribers.models import Bookmark
from subscribers.registry import load_registry
from tests.factories import operator
from tests.workers import drain

pytestmark = pytest.mark.django_db(transaction=True)

DEMO = {
    **settings.EVENTDESK,
    "subscribers": ["demo.projections.CautionLog", "demo.reactions.CautionDrafter"],
    "demo_llm_latency_seconds": 0.001,
    "max_attempts": 2,
    "retry_base_seconds": 0.01,
}


def drafter() -> Bookmark:
    return Bookmark.objects.get(subscriber_name="demo.caution_drafter")


@override_settings(EVENTDESK=DEMO)
def test_a_fresh_poison_wedges_the_drafter_again_after_a_dismissal() -> None:
    call_command("seed_demo", stdout=io.StringIO())
    registry = load_registry()
    drain(registry, lambda: drafter().status == "wedged", "the first wedge")
    failing = drafter().failing_event_id
    assert failing is not None
    dismiss_event_in_reaction("demo.caution_drafter", failing, "demo", operator())
    drain(registry, lambda: drafter().status == "active" and drafter().last_error == "")

    out = io.StringIO()
    call_command("seed_demo", "--poison", stdout=out)
    assert "Appended a fresh poison caution" in out.getvalue()
    drain(registry, lambda: drafter().status == "wedged", "the wedge again")
    poison = Event.objects.get(event_id=str(drafter().failing_event_id))
    assert (poison.event_type, poison.stream_id) == ("CautionRaised", "run-poison-0001")
    assert "ContextWindowExceeded" in drafter().last_error
    # And again: each --poison is a new run.
    call_command("seed_demo", "--poison", stdout=io.StringIO())
    assert Event.objects.filter(stream_id="run-poison-0002").count() == 2
