"""The demo a new user sees: seeded once, projections caught up, a reaction wedged on the poison,
and the stream-ordered debriefer degraded: one run's stream parked, every other run debriefed."""

from __future__ import annotations

import io

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

from demo.history import DEBRIEF_POISON_RUN, POISON_RUN
from demo.models import AgentStats, Caution, Run
from eventstore.models import Event
from subscribers.models import Bookmark
from subscribers.registry import load_registry
from subscribers.stream_work import parked_streams, work_summary
from tests.workers import drain

pytestmark = pytest.mark.django_db(transaction=True)

DEMO = {
    **settings.EVENTDESK,
    "demo_llm_latency_seconds": 0.001,
    "max_attempts": 2,
    "retry_base_seconds": 0.01,
}


def seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_seed_demo_is_idempotent() -> None:
    assert "Appended the demo history" in seed()
    count = Event.objects.count()
    assert count > 50
    assert "already there" in seed()
    assert Event.objects.count() == count


@override_settings(EVENTDESK=DEMO)
def test_demo_projections_catch_up_the_drafter_wedges_and_one_debrief_stream_parks() -> None:
    seed()
    registry = load_registry()
    assert {entry.name for entry in registry} == {
        "demo.run_board", "demo.agent_stats", "demo.caution_log", "demo.scorecards",
        "demo.run_debriefer", "demo.caution_drafter",
    }  # fmt: skip

    def settled() -> bool:
        drafter = Bookmark.objects.filter(subscriber_name="demo.caution_drafter").first()
        ended = Run.objects.exclude(status=Run.Status.RUNNING).count()
        return (
            drafter is not None
            and drafter.status == "wedged"
            and ended == 11
            and Run.objects.exclude(debrief="").count() == ended - 1
            and bool(parked_streams("demo.run_debriefer"))
        )

    drain(registry, settled, "the demo to settle")
    assert Run.objects.count() == 12
    assert sum(a.runs_started for a in AgentStats.objects.all()) == 12
    assert Caution.objects.count() == Event.objects.filter(event_type="CautionRaised").count()
    drafter = Bookmark.objects.get(subscriber_name="demo.caution_drafter")
    assert drafter.failing_event_id is not None
    poison = Event.objects.get(event_id=drafter.failing_event_id)
    assert (poison.event_type, poison.stream_id) == ("CautionRaised", POISON_RUN)
    assert "ContextWindowExceeded" in drafter.last_error
    assert drafter.attempts == 2
    # Cautions before the poison got their notes; the ones after wait behind the wedge.
    noted = Caution.objects.exclude(note="")
    assert noted.exists()
    assert all(c.run_id < POISON_RUN for c in noted)
    for name in ("demo.run_board", "demo.agent_stats", "demo.caution_log", "demo.run_debriefer"):
        assert Bookmark.objects.get(subscriber_name=name).status == "active"
    # The debriefer is stream-ordered (concurrency 8): the run whose debrief always fails
    # parks only its own stream; every other ended run got its debrief.
    debriefer = registry["demo.run_debriefer"]
    assert (debriefer.ordering, debriefer.concurrency) == ("stream", 8)
    [parked] = parked_streams("demo.run_debriefer")
    assert parked.stream_id == DEBRIEF_POISON_RUN
    assert parked.event_type == "RunCompleted"
    assert "ContextWindowExceeded" in parked.last_error
    assert Run.objects.get(run_id=DEBRIEF_POISON_RUN).debrief == ""
    debriefed = set(Run.objects.exclude(debrief="").values_list("run_id", flat=True))
    ended = set(Run.objects.exclude(status=Run.Status.RUNNING).values_list("run_id", flat=True))
    assert debriefed == ended - {DEBRIEF_POISON_RUN}
    summary = work_summary("demo.run_debriefer")
    assert (summary.parked_streams, summary.unfinished, summary.open_rows) == (1, 1, 0)
