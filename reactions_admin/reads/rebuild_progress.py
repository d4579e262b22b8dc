"""A rebuild's progress as the reading pages show it beside a subscriber (the home page, the
projection's page, ``GET /agent/subscribers``, ``diagnose_subscriber``, ``manage.py
subscribers``): the open rebuilds in one query, and a one-line text."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from reactions_admin.reads.diagnosis import paused_text
from subscribers import rebuilds as engine
from subscribers.models import Rebuild
from subscribers.pace import duration

#: The phases of a rebuild that has not ended.
OPEN_PHASES = tuple(str(phase) for phase in Rebuild.OPEN_PHASES)


def open_rebuilds() -> dict[str, engine.RebuildProgress]:
    """The progress of every open rebuild, by projection."""
    return {
        rebuild.projection_name: engine.rebuild_progress(rebuild)
        for rebuild in Rebuild.objects.filter(phase__in=OPEN_PHASES)
    }


def progress_payload(progress: engine.RebuildProgress) -> dict[str, Any]:
    """The JSON form, without the verification's samples (the rebuild's own page has them)."""
    payload = progress.as_payload()
    payload.pop("verification", None)
    payload["text"] = progress_text(progress)
    return payload


def progress_text(progress: engine.RebuildProgress) -> str:
    """A rebuild's progress in one line: phase, events done of total, rate, ETA."""
    text = f"rebuild {progress.phase_label}"
    if progress.phase in OPEN_PHASES:
        text += f": {progress.events_done} of {progress.events_total} events"
        if progress.rate > 0:
            text += f", {progress.rate:.0f} events/s"
        if progress.eta_seconds is not None and progress.phase != "ready":
            text += f", ETA {duration(progress.eta_seconds)}"
    if progress.phase == "paused":
        pause = (progress.paused_by, progress.paused_at, progress.pause_reason, timezone.now())
        text += f"; {paused_text(*pause)}"
    if progress.note:
        text += f" ({progress.note})"
    return text
