"""Failures in bulk include the heads of parked streams: a stream-ordered reaction parks a
stream instead of wedging, and its parked head is a failing item of its fingerprint's
group, previewed, dismissed (its row deleted, the next event the head) and retried
(un-parked, attempts kept) with the rest of the group, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User

from eventstore.postgres import PostgresEventStore
from eventstore.types import RecordedEvent
from reactions_admin import errors
from reactions_admin.acts.failure_groups.handler import (
    FailureGroup,
    dismiss_failure_group,
    failure_group,
    failure_groups,
    retry_failure_group,
)
from reactions_admin.acts.operations.handler import OPERATION_STREAM
from reactions_admin.acts.parked_streams.handler import RETRY_STREAM, dismiss_stream_head
from subscribers.registry import build_registry
from subscribers.stream_work import parked_streams, stream_rows
from tests.contract.conftest import STREAM_JOBS
from tests.factories import append, jobs, operator, wedged_reaction
from tests.subscribers import StreamJobs
from tests.support import bookmark, decisions, wait_until_visible
from tests.workers import drain

pytestmark = pytest.mark.django_db(transaction=True)

NAME = StreamJobs.name


@dataclass(frozen=True)
class Mixed:
    """``mailer`` (global order) wedged on ``failing``; streams "bad1" and "bad2" of
    ``test.streams`` parked on their poison job, one job waiting behind each."""

    before: RecordedEvent
    failing: RecordedEvent
    poison: dict[str, RecordedEvent]
    behind: dict[str, RecordedEvent]


@pytest.fixture
def mixed(settings: Any) -> Mixed:
    settings.EVENTDESK = {
        **settings.EVENTDESK,
        "subscribers": [STREAM_JOBS],
        "max_attempts": 2,
        "retry_base_seconds": 0.01,
        "retry_cap_seconds": 0.02,
    }
    StreamJobs.reset()
    poison, behind = {}, {}
    for stream in ("bad1", "bad2"):
        [poison[stream]] = jobs(stream, 1, poison=True)
        [behind[stream]] = jobs(stream, 1)
    drain(
        build_registry([STREAM_JOBS]),
        lambda: len(parked_streams(NAME)) == 2,
        what="streams bad1 and bad2 parked",
    )
    before, failing = wait_until_visible(append("s", "Ping", "Ping"))
    wedged_reaction("mailer", before, failing=failing)
    # The same fingerprint as the parked heads' errors: the id and the number differ.
    bookmark_row = bookmark("mailer")
    bookmark_row.last_error = f"RuntimeError: job {failing.event_id} failed (attempt 5)"
    bookmark_row.save()
    return Mixed(before, failing, poison, behind)


@pytest.fixture
def ops() -> User:
    return operator("ops", permitted=True, operates=True)


def the_group(actor: User) -> FailureGroup:
    [found] = failure_groups(actor)
    return found


def operations() -> list[Any]:
    return PostgresEventStore().read_stream(OPERATION_STREAM)


def head(stream: str) -> Any:
    return stream_rows(NAME, stream)[0]


def test_the_preview_counts_the_parked_heads_with_the_wedged_reaction(mixed, ops) -> None:
    found = the_group(ops)
    assert found.count == 3
    assert found.fingerprint.pattern == "job <id> failed (attempt <n>)"
    assert found.dismissable
    shown = failure_group(found.fingerprint.id, ops).as_json()
    assert shown["count"] == 3
    assert shown["subscribers"] == ["mailer", NAME]
    items = sorted((i["subscriber"], i["event_id"], i["stream_id"]) for i in shown["items"])
    assert items == sorted(
        [
            ("mailer", str(mixed.failing.event_id), None),
            (NAME, str(mixed.poison["bad1"].event_id), "bad1"),
            (NAME, str(mixed.poison["bad2"].event_id), "bad2"),
        ]
    )


def test_dismissing_the_group_deletes_the_heads_and_moves_the_bookmark(mixed, ops) -> None:
    found = the_group(ops)
    result = dismiss_failure_group(found.fingerprint.id, 3, "poison jobs", ops)

    assert result.count == 3
    assert parked_streams(NAME) == []
    for stream in ("bad1", "bad2"):
        [row] = stream_rows(NAME, stream)  # the next event is the head now, not parked
        assert row.event_id == mixed.behind[stream].event_id
        assert row.parked_at is None
    assert bookmark("mailer").cursor == mixed.failing.cursor
    assert bookmark("mailer").status == "active"
    dismissed = decisions()
    assert sorted(d.data["inputs"]["event_id"] for d in dismissed) == sorted(
        str(e.event_id) for e in (mixed.failing, *mixed.poison.values())
    )
    assert sorted(str(d.event_id) for d in dismissed) == sorted(
        str(i) for i in result.item_decision_ids
    )
    [grouped] = operations()
    assert grouped.data["choice"] == "GroupDismissed"
    assert grouped.data["inputs"]["count"] == 3
    assert {i.get("stream_id") for i in grouped.data["inputs"]["items"]} == {None, "bad1", "bad2"}
    assert {d.metadata["correlation_id"] for d in dismissed} == {grouped.metadata["correlation_id"]}
    assert failure_groups(ops) == []


def test_retrying_the_group_unparks_the_heads_with_their_attempts(mixed, ops) -> None:
    found = the_group(ops)
    result = retry_failure_group(found.fingerprint.id, 3, "the job store is back", ops)

    assert result.choice == "GroupRetried"
    assert parked_streams(NAME) == []
    for stream in ("bad1", "bad2"):
        row = head(stream)
        assert row.event_id == mixed.poison[stream].event_id
        assert (row.parked_at, row.next_retry_at) == (None, None)
        assert row.attempts == 2  # kept: the retry rule counts on
    mark = bookmark("mailer")
    assert (mark.status, mark.attempts) == ("retrying", 5)
    retried = PostgresEventStore().read_stream(RETRY_STREAM)
    assert sorted(r.data["inputs"]["stream_id"] for r in retried) == ["bad1", "bad2"]
    assert [operation.data["choice"] for operation in operations()] == ["GroupRetried"]
    assert decisions() == []


def test_a_head_dismissed_since_the_preview_refuses_the_group(mixed, ops) -> None:
    found = the_group(ops)
    assert found.count == 3
    dismissed = dismiss_stream_head(NAME, "bad1", "one by hand", ops)
    assert dismissed.event_id == mixed.poison["bad1"].event_id

    with pytest.raises(errors.FailureGroupChanged, match="2 failing item"):
        dismiss_failure_group(found.fingerprint.id, 3, "poison jobs", ops)
    assert [p.stream_id for p in parked_streams(NAME)] == ["bad2"]
    assert bookmark("mailer").status == "wedged"
    assert [d.event_id for d in decisions()] == [dismissed.decision_event_id]
    assert operations() == []
