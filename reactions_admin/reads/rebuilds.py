"""A projection's rebuild as every reading door shows it: its progress (phase, events done of
total, rate, ETA), what a new one would cost (the start form's estimate), what stands in
the way, and the diff the verification found (rows only in the live tables, only in the
new ones, and differing, with up to 20 samples of each side by side, changed columns
marked).

The admin's diff page, ``GET /agent/subscribers/{name}/rebuild``, the MCP tool
``rebuild_state`` and ``manage.py rebuild_projection NAME`` (no act) all read
:func:`rebuild_state`. Reading needs the console's view permission (or one implying it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.apps import apps

from reactions_admin import errors
from reactions_admin.guards import Actor, database_errors, require_durable_store
from reactions_admin.reads.overview import authorize_view
from reactions_admin.reads.rebuild_progress import OPEN_PHASES, progress_payload
from subscribers import rebuilds as engine
from subscribers.json_form import attributes
from subscribers.models import Bookmark
from subscribers.registry import configured_registry

#: The kinds of difference, in the order every door shows them.
KINDS = ("only_live", "only_new", "differing")
KIND_LABELS = {
    "only_live": "only in the live tables",
    "only_new": "only in the new tables",
    "differing": "differing",
}


@dataclass(frozen=True)
class Cell:
    """One column of a sample row: its live and new values, and whether they differ."""

    column: str
    live: Any
    new: Any
    changed: bool


@dataclass(frozen=True)
class SampleRow:
    """A row of one kind, side by side: the key it was matched by, then every column."""

    kind: str
    key: dict[str, Any]
    cells: list[Cell]

    @property
    def changed(self) -> list[str]:
        return [cell.column for cell in self.cells if cell.changed]

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "live": None if self.kind == "only_new" else {c.column: c.live for c in self.cells},
            "new": None if self.kind == "only_live" else {c.column: c.new for c in self.cells},
            "changed": self.changed,
        }


@dataclass(frozen=True)
class TableDiff:
    """One table compared at the verification's position."""

    table: str
    matched_by: list[str]
    natural_key: bool
    live_rows: int
    new_rows: int
    counts: dict[str, int]
    columns: list[str]
    samples: dict[str, list[SampleRow]]

    @property
    def unchanged(self) -> bool:
        return not any(self.counts.values())

    def as_json(self) -> dict[str, Any]:
        return {
            **attributes(self, "table", "matched_by", "natural_key", "live_rows", "new_rows"),
            **self.counts,
            "columns": self.columns,
            "samples": {kind: [row.as_json() for row in self.samples[kind]] for kind in KINDS},
        }


@dataclass(frozen=True)
class RebuildDiff:
    """What the verification found: per table, and the ``verify()`` problems (which block
    a swap; the diff itself does not)."""

    position: list[int] | None
    verified_at: str | None
    tables: list[TableDiff]
    problems: list[str]

    @property
    def changed_rows(self) -> int:
        return sum(sum(table.counts.values()) for table in self.tables)

    def as_json(self) -> dict[str, Any]:
        return {
            **attributes(self, "position", "verified_at", "changed_rows", "problems"),
            "tables": [table.as_json() for table in self.tables],
        }


def _sample(kind: str, raw: dict[str, Any], key_columns: list[str]) -> SampleRow:
    live = raw.get("live") or {}
    new = raw.get("new") or {}
    present = live or new
    columns = list(present) + [c for c in (new if live else {}) if c not in present]
    changed = set(raw.get("changed") or [])
    if kind == "differing" and not changed:
        changed = {c for c in columns if live.get(c) != new.get(c)}
    cells = [
        Cell(c, live.get(c), new.get(c), kind == "differing" and c in changed) for c in columns
    ]
    return SampleRow(kind, {c: present.get(c) for c in key_columns}, cells)


def table_diff(table: str, found: dict[str, Any], order: list[str] | None = None) -> TableDiff:
    """One table of the verification, as the doors show it: the key columns first, then
    the others in ``order`` (the model's), then any other."""
    key = [str(c) for c in found.get("matched_by") or []]
    raw_samples = found.get("samples") or {}
    samples = {
        kind: [_sample(kind, raw, key) for raw in raw_samples.get(kind) or []] for kind in KINDS
    }
    seen: set[str] = set()
    for rows in samples.values():
        for row in rows:
            seen.update(cell.column for cell in row.cells)
    columns = [c for c in key if c in seen]
    columns += [c for c in order or [] if c in seen and c not in columns]
    columns += sorted(seen - set(columns))
    return TableDiff(
        table=table,
        matched_by=key,
        natural_key=bool(found.get("natural_key")),
        live_rows=int(found.get("live_rows") or 0),
        new_rows=int(found.get("new_rows") or 0),
        counts={kind: int(found.get(kind) or 0) for kind in KINDS},
        columns=columns,
        samples=samples,
    )


def column_order(declared: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Each declared table's columns in its model's order (``Rebuild.tables`` entries)."""
    found: dict[str, list[str]] = {}
    for entry in declared:
        try:
            model = apps.get_model(str(entry.get("model")))
        except (LookupError, ValueError):
            continue
        found[str(entry.get("table"))] = [field.column for field in model._meta.concrete_fields]
    return found


def rebuild_diff(
    verification: dict[str, Any] | None, declared: list[dict[str, Any]] | None = None
) -> RebuildDiff | None:
    """The diff a rebuild's verification recorded (None before it was verified);
    ``declared``: the rebuild's tables (their models give the columns' order)."""
    if not verification:
        return None
    tables = verification.get("tables") or {}
    position = verification.get("position")
    order = column_order(declared or [])
    return RebuildDiff(
        position=[int(p) for p in position] if position else None,
        verified_at=verification.get("verified_at"),
        tables=[
            table_diff(str(name), found, order.get(str(name))) for name, found in tables.items()
        ],
        problems=[str(p) for p in verification.get("problems") or []],
    )


@dataclass(frozen=True)
class RebuildState:
    """A projection's rebuild: the latest one (open or ended) with its progress and diff,
    the estimate of a new one, what stands in the way, and the acts that apply now."""

    projection: str
    kind: str
    #: What stands in the way of a rebuild (empty: rebuildable).
    problems: list[str]
    progress: engine.RebuildProgress | None
    diff: RebuildDiff | None
    estimate: engine.RebuildEstimate | None
    #: Which acts apply now: start, swap, pause, resume, retry, cancel, roll_back.
    acts: list[str] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.progress is not None and self.progress.phase in OPEN_PHASES

    def as_json(self) -> dict[str, Any]:
        """The JSON form of ``GET /agent/subscribers/{name}/rebuild`` and the MCP tool."""
        return {
            "projection": self.projection,
            "kind": self.kind,
            "rebuildable": not self.problems,
            "problems": self.problems,
            "rebuild": progress_payload(self.progress) if self.progress else None,
            "in_progress": self.open,
            "diff": self.diff.as_json() if self.diff else None,
            "estimate": self.estimate.as_payload() if self.estimate else None,
            "acts": self.acts,
        }


def _acts(kind: str, problems: list[str], phase: str | None, kept: bool) -> list[str]:
    if kind != Bookmark.Kind.PROJECTION:
        return []
    if phase in OPEN_PHASES:
        found = ["swap"] if phase == "ready" else []
        found.append({"failed": "retry", "paused": "resume"}.get(phase or "", "pause"))
        return [*found, "cancel"]
    found = [] if problems else ["start"]
    if phase == "swapped" and kept:
        found.append("roll_back")
    return found


def read_rebuild_state(name: str) -> RebuildState:
    """The state of ``name``'s rebuild, read as the shell (no authorization)."""
    require_durable_store()
    with database_errors():
        bookmark = Bookmark.objects.filter(subscriber_name=name).first()
        registry = configured_registry()
        entry = registry.get(name) if registry is not None else None
        if bookmark is None and entry is None:
            raise errors.SubscriberNotFound(f"No subscriber named {name!r}.")
        kind = entry.kind if entry is not None else bookmark.kind  # type: ignore[union-attr]
        if kind != Bookmark.Kind.PROJECTION:
            problems = ["a reaction is never rebuilt: its effects already happened"]
        elif entry is None:
            problems = ["this projection is not configured here (settings EVENTDESK subscribers)"]
        else:
            problems = engine.rebuildable(entry)
        rebuild = engine.current_rebuild(name)
        progress = engine.rebuild_progress(rebuild) if rebuild is not None else None
        diff = rebuild_diff(rebuild.verification, rebuild.tables) if rebuild is not None else None
        estimate = engine.estimate_rebuild(name) if kind == Bookmark.Kind.PROJECTION else None
    kept = progress is not None and progress.kept_until is not None
    return RebuildState(
        projection=name,
        kind=str(kind),
        problems=problems,
        progress=progress,
        diff=diff,
        estimate=estimate,
        acts=_acts(str(kind), problems, progress.phase if progress else None, kept),
    )


def rebuild_state(name: str, actor: Actor) -> RebuildState:
    """The state of ``name``'s rebuild, for ``actor`` (401/403 as every reading door)."""
    authorize_view(actor)
    return read_rebuild_state(name)
