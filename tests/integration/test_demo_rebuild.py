"""The demo's rebuild story on real PostgreSQL: ``demo.scorecards`` runs with its bug (a
failed run counted as a success), the fix is deployed (EVENTDESK_DEMO_FIXED_PROJECTIONS),
the old rows stay wrong until a rebuild; the rebuild's diff says exactly what the fix
changes; the swap repairs the tables and the roll back brings the old data back."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.core.management import call_command

from demo.models import AgentScorecard, FailedRun
from demo.scorecards import totals
from reactions_admin.acts.act import OnSubscriber
from reactions_admin.acts.rebuilds.handler import ROLL_BACK, START, SWAP, StartRebuild
from reactions_admin.reads.rebuilds import rebuild_state
from subscribers.models import Bookmark
from subscribers.rebuilds.runner import run_rebuilds_once
from subscribers.registry import load_registry
from tests.workers import drain

NAME = "demo.scorecards"


def scorecards() -> dict[str, tuple[int, int, int, int | None]]:
    return {
        card.agent: (card.runs, card.completed, card.failed, card.success_percent)
        for card in AgentScorecard.objects.all()
    }


@pytest.fixture
def demo(settings: Any, rebuild_tables: None) -> None:
    settings.EVENTDESK = {**settings.EVENTDESK, "subscribers": ["demo.scorecards.AgentScorecards"]}
    call_command("seed_demo", stdout=io.StringIO())
    drain(
        load_registry(),
        lambda: (
            sum(card[0] for card in scorecards().values()) == 12 and sum(totals().values()) == 11
        ),
        "the scorecards caught up",
    )


def test_the_bug_is_visible_the_diff_explains_the_fix_swap_and_roll_back(demo, settings) -> None:
    # With the bug every ended run is a success, and no failed run is listed.
    bugged = scorecards()
    assert totals() == {"completed": 11, "failed": 0}
    assert {card[3] for card in bugged.values()} == {100}
    assert not FailedRun.objects.exists()

    # The deploy: the fixed code runs from now on (the rows already written stay wrong).
    settings.EVENTDESK = {**settings.EVENTDESK, "demo_fixed_projections": True}
    user = User.objects.create_user("ops", password="pw", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(
            codename="rebuild_projection", content_type__app_label="reactions_admin"
        )
    )
    user = User.objects.get(pk=user.pk)
    START(StartRebuild(NAME, "count failed runs as failures"), user, via="cli")
    run_rebuilds_once(load_registry())

    state = rebuild_state(NAME, user)
    assert state.progress is not None
    assert state.progress.phase == "ready", state.progress.last_error
    assert state.diff is not None
    assert state.diff.problems == []
    found = {table.table: table for table in state.diff.tables}
    cards, failures = found["demo_scorecards"], found["demo_failed_runs"]
    # Two agents had a run fail (runs 5 and 10): their counts and rates change...
    assert cards.counts == {"only_live": 0, "only_new": 0, "differing": 2}
    changed = {s.key["agent"]: set(s.changed) for s in cards.samples["differing"]}
    assert changed == {
        "release-scribe": {"completed", "failed", "success_percent"},
        "triage-bot": {"completed", "failed", "success_percent"},
    }
    # ...and the two failed runs appear, only in the new tables.
    assert failures.counts == {"only_live": 0, "only_new": 2, "differing": 0}
    assert {s.key["run_id"] for s in failures.samples["only_new"]} == {"run-0005", "run-0010"}

    SWAP(OnSubscriber(NAME, "the diff is what the fix means"), user, via="cli")
    assert totals() == {"completed": 9, "failed": 2}
    assert scorecards()["triage-bot"][3] == 75
    assert FailedRun.objects.count() == 2
    assert Bookmark.objects.get(pk=NAME).status == "active"

    ROLL_BACK(OnSubscriber(NAME, "show the roll back"), user, via="cli")
    assert scorecards() == bugged  # the old data, not the old code
    assert not FailedRun.objects.exists()


def test_the_demo_registers_the_scorecards() -> None:
    assert "demo.scorecards.AgentScorecards" in settings.EVENTDESK["subscribers"]  # type: ignore[operator]
