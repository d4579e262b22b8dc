"""The operator's actions against real workers: retry now, pause, resume, and failures in
bulk by fingerprint (all or nothing, one decision per dismissed event, conflicts)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import override_settings
from django.utils import timezone

from eventstore.models import Event
from eventstore.postgres import PostgresEventStore
from reactions_admin import errors
from reactions_admin.acts.dismissal.handler import dismiss_event_in_reaction
from reactions_admin.acts.failure_groups.handler import (
    dismiss_failure_group,
    failure_group,
    failure_groups,
    retry_failure_group,
)
from reactions_admin.acts.operations.handler import OPERATION_STREAM, pause, resume, retry_now
from subscribers.bookmarks import BookmarkState
from subscribers.failures import Failure, FailureSite, record_failure
from subscribers.leases import LeaseKeeper
from subscribers.models import Bookmark
from subscribers.registry import build_registry
from subscribers.streams import take_in_and_claim
from tests.factories import append, jobs, operator, wedged_reaction
from tests.subscribers import GatedReaction, applied
from tests.support import bookmark, decisions, raw_connection, wait_for, wait_until_visible
from tests.workers import drain, running_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("applied_table")]

FAST = {"poll_interval_seconds": 0.2, "retry_base_seconds": 0.01, "max_attempts": 2}


def registry(*names: str) -> Any:
    return build_registry(["tests.subscribers." + name for name in names])


@pytest.fixture
def ops() -> User:
    return operator("ops", permitted=True, operates=True)


def operations() -> list[Any]:
    return PostgresEventStore().read_stream(OPERATION_STREAM)


def ticks() -> int:
    """The Ticks test.recorder applied (it also sees the decisions the actions append)."""
    return sum(1 for row in applied("test.recorder") if row[2] == "Tick")


def pongs() -> int:
    return Event.objects.filter(event_type="Pong").count()


@override_settings(EVENTDESK=FAST)
def test_retry_now_on_a_wedged_reaction_that_fails_again_keeps_it_wedged_with_one_more_attempt(
    ops,
) -> None:
    wait_until_visible(append("p", "Ping", poison=True))
    subs = registry("EchoReaction")
    drain(subs, lambda: bookmark("test.echo").status == "wedged", "wedged")
    assert bookmark("test.echo").attempts == 2
    drain(subs, lambda: True)  # a wedged bookmark is left alone: no attempt
    assert bookmark("test.echo").attempts == 2

    result = retry_now("test.echo", "upstream says fixed", ops, via="cli")
    assert (result.status_before, result.status_after) == ("wedged", "retrying")
    drain(subs, lambda: bookmark("test.echo").status == "wedged", "wedged again")
    mark = bookmark("test.echo")
    assert mark.attempts == 3
    [decision] = operations()
    assert decision.data["choice"] == "RetriedNow"
    assert decision.data["reason"] == "upstream says fixed"
    assert decision.data["inputs"]["attempts"] == 2
    assert decision.metadata["via"] == "cli"


@override_settings(EVENTDESK=FAST)
def test_retry_now_that_succeeds_moves_on(ops) -> None:
    [before] = append("x", "Other")
    [ping] = wait_until_visible(append("p", "Ping"))
    wedged_reaction("test.echo", before, failing=ping)  # wedged, say, by a passing outage
    retry_now("test.echo", "the outage is over", ops)
    drain(registry("EchoReaction"), lambda: bookmark("test.echo").cursor >= ping.cursor)
    mark = bookmark("test.echo")
    assert (mark.status, mark.attempts, mark.failing_event_id) == ("active", 0, None)
    assert pongs() == 1


@override_settings(EVENTDESK=FAST)
def test_a_paused_projection_is_not_run_and_resumes_where_it_was(ops) -> None:
    subs = registry("RecordingProjection")
    first = wait_until_visible(append("a", "Tick", "Tick"))
    drain(subs, lambda: bookmark("test.recorder").cursor >= first[-1].cursor)
    pause("test.recorder", "rebuilding the read model", ops)
    later = wait_until_visible(append("b", "Tick", "Tick"))
    drain(subs, lambda: True)
    mark = bookmark("test.recorder")
    assert mark.status == "paused"
    assert (mark.paused_by, mark.pause_reason, mark.paused_from) == (
        "ops", "rebuilding the read model", "active",
    )  # fmt: skip
    assert mark.cursor == first[-1].cursor
    assert ticks() == 2

    resume("test.recorder", "rebuild done", ops)
    drain(subs, lambda: bookmark("test.recorder").cursor >= later[-1].cursor)
    assert ticks() == 4
    assert bookmark("test.recorder").status == "active"
    assert [d.data["choice"] for d in operations()] == ["Paused", "Resumed"]


@override_settings(EVENTDESK=FAST)
def test_a_pause_lets_the_handle_in_flight_land_then_nothing_more_runs(ops) -> None:
    append("p1", "Ping")
    wait_until_visible(append("p2", "Ping"))
    with running_worker(registry("GatedReaction")):
        assert GatedReaction.entered.wait(60)
        pause("test.gated", "vendor incident", ops)
        GatedReaction.gate.set()
        wait_for(lambda: pongs() == 1, what="the result in flight lands")
        # Past the first ping, still paused, and the second ping never starts.
        mark = bookmark("test.gated")
        assert mark.status == "paused"
        assert mark.lease_owner == ""
        GatedReaction.entered.clear()
        assert not GatedReaction.entered.wait(1.0)
    assert pongs() == 1


def test_a_failure_recorded_while_paused_keeps_the_pause() -> None:
    [ping] = wait_until_visible(append("p", "Ping"))
    Bookmark.objects.create(
        subscriber_name="test.echo", kind="reaction", status="paused", paused_from="active",
        paused_by="ops", pause_reason="x", paused_at=timezone.now(),
    )  # fmt: skip
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        state = BookmarkState(bookmark("test.echo").cursor, 0, None)
        site = FailureSite.bookmark("test.echo", state.cursor, state)
        record_failure(cursor, site, Failure(ping, "E: x", ""))
    mark = bookmark("test.echo")
    assert (mark.status, mark.paused_from, mark.attempts) == ("paused", "retrying", 1)


def test_a_dismissal_on_a_paused_reaction_keeps_the_pause(ops) -> None:
    events = wait_until_visible(append("orders", "Ping", "Ping"))
    wedged_reaction("test.echo", events[0], events[1])
    pause("test.echo", "looking into the poison", ops)
    dismiss_event_in_reaction("test.echo", events[1].event_id, "poison, OPS-9", ops)
    mark = bookmark("test.echo")
    assert mark.status == "paused"
    assert (mark.attempts, mark.failing_event_id, mark.cursor) == (0, None, events[1].cursor)
    resume("test.echo", "done looking", ops)
    assert bookmark("test.echo").status == "active"


@override_settings(EVENTDESK=FAST)
def test_a_paused_stream_ordered_reaction_claims_nothing(ops) -> None:
    [entry] = list(build_registry(["tests.subscribers.StreamJobs"]))
    wait_until_visible(jobs("s1", 2))
    Bookmark.objects.create(subscriber_name=entry.name, kind="reaction")
    pause(entry.name, "holding the stream jobs", ops)
    intake, claims = take_in_and_claim(entry, LeaseKeeper("w"), 4)
    assert claims == []
    assert intake.moved_to is None


def test_refusals_change_nothing(ops) -> None:
    Bookmark.objects.create(subscriber_name="board", kind="projection")
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: retry_now("board", "x", ops), "nothing_to_retry"),
        (lambda: resume("board", "x", ops), "not_paused"),
        (lambda: pause("board", "  \u200b ", ops), "reason_required"),
        (lambda: pause("nope", "x", ops), "subscriber_not_found"),
        (lambda: pause("board", "x", operator("intern", permitted=True)), "permission_denied"),
    ]
    for act, code in cases:
        with pytest.raises(errors.ReactionsError) as refused:
            act()
        assert refused.value.code == code
    assert bookmark("board").status == "active"
    pause("board", "x", ops)
    paused: list[tuple[Callable[[], object], str]] = [
        (lambda: pause("board", "again", ops), "already_paused"),
        (lambda: retry_now("board", "x", ops), "subscriber_paused"),
    ]
    for act, code in paused:
        with pytest.raises(errors.ReactionsError) as refused:
            act()
        assert refused.value.code == code
    assert len(operations()) == 1


# -- failures in bulk ---------------------------------------------------------------------


@pytest.fixture
def poisoned() -> list[Any]:
    """Three wedged reactions: two on the same kind of error (numbers differ), one other."""
    events = wait_until_visible(append("s", "Ping", "Ping", "Ping", "Ping"))
    for name, event, error in [
        ("mailer", events[1], "ContextWindowExceeded: prompt is 38,545 tokens"),
        ("digest", events[2], "ContextWindowExceeded: prompt is 40,112 tokens"),
        ("pager", events[3], "KeyError: 'customer_id'"),
    ]:
        wedged_reaction(name, events[0], failing=event)
        Bookmark.objects.filter(pk=name).update(last_error=error)
    return events


def context_group(actor: User) -> Any:
    [found] = [g for g in failure_groups(actor) if g.fingerprint.exception_type.startswith("Con")]
    return found


def test_groups_by_fingerprint_and_dismisses_a_group_each_event_its_own_decision(
    poisoned, ops
) -> None:
    found = context_group(ops)
    assert found.count == 2
    assert found.fingerprint.pattern == "prompt is <n> tokens"
    assert {i.subscriber for i in found.items} == {"mailer", "digest"}
    assert failure_group(found.fingerprint.id, ops).count == 2

    result = dismiss_failure_group(found.fingerprint.id, 2, "oversized evidence", ops)
    assert result.count == 2
    assert bookmark("mailer").cursor == poisoned[1].cursor
    assert bookmark("digest").cursor == poisoned[2].cursor
    assert bookmark("pager").status == "wedged"
    dismissed = decisions()
    assert sorted(d.data["inputs"]["event_id"] for d in dismissed) == sorted(
        str(e.event_id) for e in poisoned[1:3]
    )
    [grouped] = operations()
    assert grouped.data["choice"] == "GroupDismissed"
    assert grouped.metadata["correlation_id"] == dismissed[0].metadata["correlation_id"]
    # The second operator, a moment later: the group is gone.
    with pytest.raises(errors.FailureGroupChanged):
        dismiss_failure_group(found.fingerprint.id, 2, "me too", ops)


def test_a_group_that_changed_since_the_preview_is_refused(poisoned, ops) -> None:
    found = context_group(ops)
    with pytest.raises(errors.FailureGroupChanged, match="2 failing item"):
        dismiss_failure_group(found.fingerprint.id, 3, "poison", ops)
    assert decisions() == []
    assert operations() == []


def test_a_second_operator_acting_at_the_same_moment_gets_a_conflict(poisoned, ops) -> None:
    found = context_group(ops)
    with raw_connection(autocommit=False) as first:
        first.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            [f"eventdesk-failure-group:{found.fingerprint.id}"],
        )
        with pytest.raises(errors.FailureGroupBusy):
            dismiss_failure_group(found.fingerprint.id, 2, "poison", ops)
        first.rollback()
    assert decisions() == []


def test_a_group_is_all_or_nothing(poisoned, ops) -> None:
    Bookmark.objects.filter(pk="digest").update(failing_event_id=uuid.uuid4())  # gone
    found = context_group(ops)
    with pytest.raises(errors.EventNotFound):
        dismiss_failure_group(found.fingerprint.id, 2, "poison", ops)
    assert bookmark("mailer").cursor == poisoned[0].cursor  # its dismissal rolled back
    assert decisions() == []
    assert operations() == []


def test_retrying_a_group_keeps_the_attempts(poisoned, ops) -> None:
    found = context_group(ops)
    result = retry_failure_group(found.fingerprint.id, 2, "provider raised the limit", ops)
    assert result.choice == "GroupRetried"
    for name in ("mailer", "digest"):
        mark = bookmark(name)
        assert (mark.status, mark.attempts) == ("retrying", 5)
        assert mark.next_retry_at is not None
        assert mark.next_retry_at <= timezone.now()
    assert bookmark("pager").status == "wedged"


def test_a_projection_failure_cannot_be_dismissed_in_bulk(poisoned, ops) -> None:
    Bookmark.objects.filter(pk="digest").update(kind="projection")
    found = context_group(ops)
    with pytest.raises(errors.NotDismissable):
        dismiss_failure_group(found.fingerprint.id, 2, "poison", ops)
    assert decisions() == []
