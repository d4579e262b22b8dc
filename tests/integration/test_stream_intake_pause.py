"""Intake paused at ``intake_limit``: recorded on the bookmark, reported by ``work_summary``
(which the console, the diagnosis and the metrics read), cleared once below the limit."""

from __future__ import annotations

import pytest

from subscribers.bookmarks import ensure_bookmarks
from subscribers.leases import LeaseKeeper
from subscribers.models import Bookmark, ReactionWork
from subscribers.stream_work import work_summary
from subscribers.streams import take_in_and_claim
from tests.factories import jobs
from tests.subscribers import StreamJobs
from tests.support import wait_until_visible
from tests.workers import stream_reaction

pytestmark = pytest.mark.django_db(transaction=True)

NAME = StreamJobs.name


def test_the_work_summary_says_since_when_intake_is_paused_at_the_limit() -> None:
    wait_until_visible(jobs("p", 4))  # the intake reads under the horizon
    [entry] = stream_reaction(intake_limit=2)
    ensure_bookmarks([entry])
    leases = LeaseKeeper("test")
    assert work_summary(NAME).intake_paused_at is None
    intake, _ = take_in_and_claim(entry, leases, 0)
    assert (intake.taken, intake.paused, work_summary(NAME).intake_paused_at) == (2, False, None)
    intake, _ = take_in_and_claim(entry, leases, 0)
    assert intake.paused
    since = work_summary(NAME).intake_paused_at
    assert since is not None
    assert since == Bookmark.objects.get(subscriber_name=NAME).intake_paused_at
    take_in_and_claim(entry, leases, 0)  # still at the limit: still paused, since then
    assert work_summary(NAME).intake_paused_at == since
    ReactionWork.objects.all().delete()  # the two rows finish (as their settles would)
    intake, _ = take_in_and_claim(entry, leases, 0)
    assert (intake.taken, intake.paused) == (2, False)
    summary = work_summary(NAME)
    assert (summary.intake_paused_at, summary.open_rows) == (None, 2)


def test_the_pause_is_cleared_below_the_limit_even_with_nothing_new_to_take_in() -> None:
    wait_until_visible(jobs("p", 2))
    [entry] = stream_reaction(intake_limit=2)
    ensure_bookmarks([entry])
    leases = LeaseKeeper("test")
    take_in_and_claim(entry, leases, 0)
    intake, _ = take_in_and_claim(entry, leases, 0)
    assert intake.paused
    ReactionWork.objects.all().delete()  # finished; no event waits past the intake point
    intake, _ = take_in_and_claim(entry, leases, 0)
    assert (intake.taken, intake.moved_to, intake.paused) == (0, None, False)
    assert work_summary(NAME).intake_paused_at is None
