"""The rebuild acts (start, swap, cancel, roll back) through their one handler: each
audited as a ``DecisionRegistered`` of context ``ProjectionRebuild`` in the transaction of
the engine's step, each refusal code of the engine mapped to its 409 (or 400, 404, 503),
and nothing changed by a refusal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection

from eventstore.postgres import PostgresEventStore
from eventstore.types import RecordedEvent
from reactions_admin import errors
from reactions_admin.acts.act import OnSubscriber
from reactions_admin.acts.rebuilds import handler
from reactions_admin.acts.rebuilds.handler import StartRebuild
from reactions_admin.reads.rebuilds import rebuild_state
from subscribers.models import Bookmark, Rebuild
from subscribers.rebuilds.runner import run_rebuilds_once
from tests.support import raw_connection

pytestmark = pytest.mark.usefixtures("rebuilds")


def rebuilder(username: str = "rebuilder") -> User:
    user = User.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(
            codename="rebuild_projection", content_type__app_label="reactions_admin"
        )
    )
    return User.objects.get(pk=user.pk)


def do(act: Any, name: str, reason: str, user: Any, *, via: str = "api", **more: Any) -> Any:
    """``act`` on projection ``name``, as its doors call it."""
    given = (
        StartRebuild(name, reason, **more) if act is handler.START else OnSubscriber(name, reason)
    )
    return act(given, user, via=via)


def rebuild_decisions() -> list[RecordedEvent]:
    return PostgresEventStore().read_stream(handler.REBUILD_STREAM)


def live_totals() -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT key, n, total FROM rb_totals ORDER BY key")
        return list(cursor.fetchall())


def state() -> tuple[Any, ...]:
    """What a rebuild act could change: rebuilds, bookmarks, decisions, the live rows."""
    return (
        list(Rebuild.objects.order_by("pk").values()),
        list(Bookmark.objects.order_by("pk").values()),
        [event.event_id for event in rebuild_decisions()],
        live_totals(),
    )


def test_start_swap_roll_back_and_cancel_are_each_audited(rebuilds) -> None:
    user = rebuilder()
    before = live_totals()
    started = do(handler.START, rebuilds.name, "  fix the doubling  ", user, via="cli")
    assert (started.choice, started.phase) == ("RebuildStarted", "copying_schema")
    rebuilds.built()
    assert live_totals() == before  # the live tables stay as they were while it builds

    swapped = do(handler.SWAP, rebuilds.name, "diff read: totals double", user, via="rest")
    assert (swapped.choice, swapped.phase) == ("RebuildSwapped", "swapped")
    assert [total for _, _, total in live_totals()] == [2 * t for _, _, t in before]
    summary = swapped.inputs["verification"]
    assert summary["problems"] == []
    assert summary["tables"]["rb_totals"]["differing"] == 4
    assert "samples" not in summary["tables"]["rb_totals"]

    rolled = do(handler.ROLL_BACK, rebuilds.name, "wrong fix", user, via="mcp")
    assert (rolled.choice, rolled.phase) == ("RebuildRolledBack", "rolled_back")
    assert live_totals() == before

    do(handler.START, rebuilds.name, "again", user, swap_when_verified=True, via="admin")
    cancelled = do(handler.CANCEL, rebuilds.name, "not today", user, via="admin")
    assert (cancelled.choice, cancelled.phase) == ("RebuildCancelled", "cancelled")

    found = rebuild_decisions()
    assert [d.data["choice"] for d in found] == [
        "RebuildStarted", "RebuildSwapped", "RebuildRolledBack", "RebuildStarted",
        "RebuildCancelled",
    ]  # fmt: skip
    assert {d.data["context"] for d in found} == {"ProjectionRebuild"}
    assert {d.data["actor"]["username"] for d in found} == {"rebuilder"}
    assert [d.metadata["via"] for d in found] == ["cli", "rest", "mcp", "admin", "admin"]
    assert [d.data["reason"] for d in found][:2] == ["fix the doubling", "diff read: totals double"]
    assert all(d.data["inputs"]["subscriber"] == rebuilds.name for d in found)
    assert found[0].data["inputs"]["swap_when_verified"] is False
    assert found[3].data["inputs"]["swap_when_verified"] is True
    assert found[1].data["inputs"]["verification"] == summary
    assert str(found[1].event_id) == str(swapped.decision_event_id)
    rebuild = Rebuild.objects.get(pk=found[0].data["inputs"]["rebuild_id"])
    assert (rebuild.started_by, rebuild.reason) == ("rebuilder", "fix the doubling")


def test_the_state_shows_progress_the_diff_side_by_side_and_the_acts(rebuilds) -> None:
    user = rebuilder()
    fresh = rebuild_state(rebuilds.name, user)
    assert fresh.progress is None
    assert fresh.diff is None
    assert fresh.acts == ["start"]
    assert fresh.estimate is not None
    assert fresh.estimate.events == 20
    assert fresh.estimate.extra_bytes > 0
    assert fresh.estimate.tables == ["rb_totals", "rb_entries"]

    do(handler.START, rebuilds.name, "fix", user)
    rebuilds.built()
    ready = rebuild_state(rebuilds.name, user)
    assert ready.acts == ["swap", "pause", "cancel"]
    assert ready.progress is not None
    assert ready.progress.phase == "ready"
    assert (ready.progress.events_done, ready.progress.events_total) == (20, 20)
    assert ready.diff is not None
    [totals, entries] = ready.diff.tables
    assert totals.columns == ["key", "n", "total"]  # the key first, then the model's order
    assert totals.counts == {"only_live": 0, "only_new": 0, "differing": 4}
    first = totals.samples["differing"][0]
    assert first.changed == ["total"]
    cells = {cell.column: cell for cell in first.cells}
    assert cells["total"].new == 2 * cells["total"].live
    assert not cells["n"].changed
    assert entries.natural_key
    assert entries.matched_by == ["event_id"]
    payload = ready.as_json()
    assert payload["diff"]["tables"][0]["samples"]["differing"][0]["changed"] == ["total"]
    assert "verification" not in payload["rebuild"]  # the samples are shown once

    do(handler.SWAP, rebuilds.name, "go", user)
    swapped = rebuild_state(rebuilds.name, user)
    assert swapped.acts == ["start", "roll_back"]
    assert swapped.diff is not None  # the diff the swap went on stays readable


SETUPS: dict[str, Callable[[Any], Any]] = {
    "nothing": lambda rebuilds: None,
    "started": lambda rebuilds: rebuilds.started(),
    "ready": lambda rebuilds: rebuilds.ready(),
    "failed": lambda rebuilds: rebuilds.failed(),
    "migrated": lambda rebuilds: rebuilds.migrated(),
}

START, SWAP, CANCEL, ROLL_BACK = handler.START, handler.SWAP, handler.CANCEL, handler.ROLL_BACK


@pytest.mark.parametrize(
    ("setup", "act", "name", "reason", "status", "code"),
    [
        ("nothing", START, "test.echo", "x", 409, "reaction_cannot_be_rebuilt"),
        ("nothing", START, "test.rb_no_models", "x", 409, "projection_not_rebuildable"),
        ("nothing", START, "test.nobody", "x", 404, "subscriber_not_found"),
        ("started", START, "test.rb_totals", "x", 409, "rebuild_in_progress"),
        ("nothing", START, "test.rb_totals", " \u200b ", 400, "reason_required"),
        ("nothing", START, "test.rb_totals", "x" * 2001, 400, "reason_too_long"),
        ("nothing", START, "test.rb_totals", "nul\x00", 400, "unstorable_text"),
        ("nothing", SWAP, "test.rb_totals", "x", 409, "no_rebuild"),
        ("started", SWAP, "test.rb_totals", "x", 409, "rebuild_not_ready"),
        ("failed", SWAP, "test.rb_totals", "x", 409, "rebuild_failed"),
        ("migrated", SWAP, "test.rb_totals", "x", 409, "table_definition_changed"),
        ("nothing", CANCEL, "test.rb_totals", "x", 409, "no_rebuild"),
        ("nothing", ROLL_BACK, "test.rb_totals", "x", 409, "nothing_to_roll_back"),
        ("ready", ROLL_BACK, "test.rb_totals", "x", 409, "rebuild_in_progress"),
        ("ready", SWAP, "test.rb_totals", "", 400, "reason_required"),
        # An unknown name is not found by every act, not only by a start and a swap.
        ("nothing", SWAP, "test.nobody", "x", 404, "subscriber_not_found"),
        ("nothing", CANCEL, "test.nobody", "x", 404, "subscriber_not_found"),
        ("nothing", ROLL_BACK, "test.nobody", "x", 404, "subscriber_not_found"),
        ("nothing", handler.PAUSE, "test.nobody", "x", 404, "subscriber_not_found"),
        ("nothing", handler.RESUME, "test.nobody", "x", 404, "subscriber_not_found"),
        ("nothing", handler.RETRY, "test.nobody", "x", 404, "subscriber_not_found"),
    ],
)
def test_each_refusal_has_its_code_and_changes_nothing(
    rebuilds, setup, act, name, reason, status, code
) -> None:
    SETUPS[setup](rebuilds)
    user = rebuilder()
    before = state()
    with pytest.raises(errors.ReactionsError) as refused:
        do(act, name, reason, user)
    assert (refused.value.status, refused.value.code) == (status, code), refused.value.detail
    assert refused.value.detail
    assert state() == before


def test_a_swap_behind_a_long_reader_gives_up_with_503_and_changes_nothing(
    rebuilds, monkeypatch
) -> None:
    rebuilds.ready()
    monkeypatch.setattr(handler, "LOCK_TRIES", 2)
    user = rebuilder()
    with raw_connection(autocommit=False) as reader:
        reader.execute("SELECT count(*) FROM rb_totals")  # holds its lock until it ends
        before = state()
        with pytest.raises(errors.ReactionsError) as refused:
            do(handler.SWAP, rebuilds.name, "go", user)
        assert (refused.value.status, refused.value.code) == (503, "rebuild_locks_busy")
        reader.rollback()
    assert state()[1:] == before[1:]
    assert Rebuild.objects.get().phase == "ready"


def test_only_the_rebuild_permission_acts_and_a_viewer_reads(rebuilds) -> None:
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(
        Permission.objects.get(codename="view_console", content_type__app_label="reactions_admin")
    )
    viewer = User.objects.get(pk=viewer.pk)
    with pytest.raises(errors.PermissionDenied):
        do(handler.START, rebuilds.name, "x", viewer)
    assert rebuild_state(rebuilds.name, viewer).acts == ["start"]
    assert Rebuild.objects.count() == 0


def test_pause_resume_and_retry_are_audited_and_refused_out_of_place(rebuilds) -> None:
    user = rebuilder()
    with pytest.raises(errors.NoRebuild):
        do(handler.PAUSE, rebuilds.name, "x", user)
    rebuilds.started()
    paused = do(handler.PAUSE, rebuilds.name, "the disk is busy tonight", user)
    assert (paused.choice, paused.phase) == ("RebuildPaused", "paused")
    assert rebuild_state(rebuilds.name, user).acts == ["resume", "cancel"]
    assert run_rebuilds_once(rebuilds.registry) == 0  # no worker works a paused rebuild
    resumed = do(handler.RESUME, rebuilds.name, "quiet again", user)
    assert (resumed.choice, resumed.phase) == ("RebuildResumed", "copying_schema")
    with pytest.raises(errors.NoRebuild):
        do(handler.RETRY, rebuilds.name, "x", user)  # only a failed rebuild is retried
    do(handler.CANCEL, rebuilds.name, "again, failing", user)

    rebuilds.failed()
    assert rebuild_state(rebuilds.name, user).acts == ["retry", "cancel"]
    with pytest.raises(errors.RebuildFailed):
        do(handler.PAUSE, rebuilds.name, "x", user)
    retried = do(handler.RETRY, rebuilds.name, "the new code is fixed", user)
    assert retried.choice == "RebuildRetried"
    assert retried.inputs["phase_before"] == "failed"
    rebuilds.built()  # Totals.apply is itself again: the rebuild goes on to the end
    assert [d.data["choice"] for d in rebuild_decisions()][-3:] == [
        "RebuildCancelled", "RebuildFailed", "RebuildRetried",
    ]  # fmt: skip
