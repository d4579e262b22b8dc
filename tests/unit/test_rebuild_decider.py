"""The rebuild acts' decider: pure, no database. The reason rule of every act, and what each
decision records."""

from __future__ import annotations

import pytest

from reactions_admin.acts.operations.decider import Refused
from reactions_admin.acts.rebuilds.decider import CONTEXT, Choice, Go, Request, audit, decide


@pytest.mark.parametrize("act", list(Choice))
@pytest.mark.parametrize(
    ("reason", "code"),
    [("", "reason_required"), (" \u200b\t", "reason_required"), ("x" * 2001, "reason_too_long")],
)
def test_every_act_needs_a_reason_it_can_record(act, reason, code) -> None:
    decision = decide(Request(act, "demo.scorecards", reason))
    assert isinstance(decision, Refused)
    assert decision.refusal.value == code
    assert decision.detail


def test_the_reason_is_trimmed_and_the_decision_names_the_act() -> None:
    go = decide(Request(Choice.SWAP, "demo.scorecards", "  the diff is the fix \n"))
    assert isinstance(go, Go)
    recorded = audit(go, {"rebuild_id": 7, "verification": {"problems": []}})
    assert (recorded.context, recorded.choice, recorded.reason) == (
        CONTEXT, "RebuildSwapped", "the diff is the fix",
    )  # fmt: skip
    assert recorded.inputs == {
        "subscriber": "demo.scorecards", "rebuild_id": 7, "verification": {"problems": []},
    }  # fmt: skip


def test_a_start_records_whether_the_worker_swaps_on_its_own() -> None:
    go = decide(Request(Choice.START, "demo.scorecards", "fix", swap_when_verified=True))
    assert isinstance(go, Go)
    assert audit(go, {"rebuild_id": 1}).inputs["swap_when_verified"] is True
    assert (
        "swap_when_verified"
        not in audit(Go(Request(Choice.CANCEL, "demo.scorecards", "x"), "x"), {}).inputs
    )


def test_the_choices_are_the_issues_and_pause_resume_retry() -> None:
    assert [c.value for c in Choice] == [
        "RebuildStarted", "RebuildSwapped", "RebuildCancelled", "RebuildRolledBack",
        "RebuildPaused", "RebuildResumed", "RebuildRetried",
    ]  # fmt: skip


def test_a_decision_is_said_in_plain_words() -> None:
    # Messages for people name the act in words; the choice stays the event's data.
    assert Choice.ROLL_BACK.said == "rebuild rolled back"
    assert Choice.START.said == "rebuild started"
    assert {choice.said for choice in Choice} == {
        "rebuild started", "rebuild swapped", "rebuild cancelled", "rebuild rolled back",
        "rebuild paused", "rebuild resumed", "rebuild retried",
    }  # fmt: skip
