"""Projection rebuilds (issue 17): build a projection's tables again beside the live ones,
compare at one position, swap them in with one short transaction, roll back.

A rebuild is a subscriber of its own kind with its own bookmark (the ``Rebuild`` row,
``projection_rebuilds``). It runs the projection's unchanged code against exact copies
(names included) of the tables the projection declares (``models = (Run, ...)``), made
in a schema of the rebuild's own and reached through ``SET LOCAL search_path``, under a
``SET LOCAL ROLE`` that may write nowhere else. It never runs past the live projection.

The engine's API (the operator surface calls these; they import nothing from it):

Inner steps. Each takes the caller's open transaction (``transaction.atomic``), locks
what it needs, and either makes its change or raises ``RebuildRefused(code, detail)``;
the caller appends its own decision in the same transaction.

* ``start_rebuild(name, *, reason, started_by, swap_when_verified=False) -> Rebuild``
  refuses ``subscriber_not_found``, ``reaction_cannot_be_rebuilt``,
  ``projection_not_rebuildable``, ``rebuild_in_progress``.
* ``swap_rebuild(name) -> SwapResult``: ``no_rebuild``, ``rebuild_failed``,
  ``rebuild_not_ready``, ``table_definition_changed``, ``rebuild_locks_busy``.
* ``roll_back_rebuild(name) -> RollBackResult``: ``nothing_to_roll_back``,
  ``table_definition_changed``, ``rebuild_locks_busy``.
* ``cancel_rebuild(name) -> CancelResult``: ``no_rebuild``.
* ``pause_rebuild(name)``, ``resume_rebuild(name)``, ``retry_rebuild(name)``
  ``-> Rebuild``: ``no_rebuild`` (and ``rebuild_failed`` for pause/resume of a failed
  one; retry only a failed one, else ``no_rebuild``).
* ``with_lock_retries(body, name=...)``: runs ``body`` (an act: its own durable atomic
  block around an inner step) again while it refuses ``rebuild_locks_busy``, and notes
  the waiting on the rebuild for the progress pages.

Reads (no transaction needed):

* ``current_rebuild(name) -> Rebuild | None``: the projection's latest rebuild.
* ``rebuild_progress(rebuild) -> RebuildProgress``: phase, events done of total, rate,
  ETA, note.
* ``estimate_rebuild(name) -> RebuildEstimate``: for the start form (events to replay,
  rate measured so far, duration, extra disk).
* ``rebuildable(entry) -> list[str]``: what stands in the way (empty: rebuildable).

The worker: ``subscribers.rebuilds.runner.RebuildRunner(projections, owner)``, hooked
into ``subscribers.worker``; ``run_rebuilds_once(registry)`` drives it in tests.

Decisions the worker takes on its own (``RebuildFailed``, ``RebuildTablesDropped`` by
the system, the swap of ``--swap-when-verified`` as the starter, via ``worker``) are
appended by the engine (``subscribers.rebuilds.audit``).
"""

from __future__ import annotations

from subscribers.rebuilds.declared import rebuildable
from subscribers.rebuilds.errors import CODES, RebuildRefused
from subscribers.rebuilds.estimate import RebuildEstimate, estimate_rebuild
from subscribers.rebuilds.progress import RebuildProgress, rebuild_progress
from subscribers.rebuilds.steps import (
    CancelResult,
    RollBackResult,
    SwapResult,
    cancel_rebuild,
    current_rebuild,
    pause_rebuild,
    resume_rebuild,
    retry_rebuild,
    roll_back_rebuild,
    start_rebuild,
    swap_rebuild,
    with_lock_retries,
)

__all__ = [
    "CODES",
    "CancelResult",
    "RebuildEstimate",
    "RebuildProgress",
    "RebuildRefused",
    "RollBackResult",
    "SwapResult",
    "cancel_rebuild",
    "current_rebuild",
    "estimate_rebuild",
    "pause_rebuild",
    "rebuild_progress",
    "rebuildable",
    "resume_rebuild",
    "retry_rebuild",
    "roll_back_rebuild",
    "start_rebuild",
    "swap_rebuild",
    "with_lock_retries",
]
