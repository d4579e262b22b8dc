"""``manage.py rebuild_projection NAME --reason … --as USER [--swap-when-verified]``, and
``--swap``, ``--cancel``, ``--roll-back`` (each with ``--reason`` and ``--as``). Without an
act it prints the rebuild's state: progress, the estimate of a new one, and the diff as a
table (``*`` marks a changed value; ``--json``: the REST API's JSON)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from reactions_admin import errors
from reactions_admin.acts.act import Act, OnSubscriber
from reactions_admin.acts.rebuilds.handler import BY_FLAG, START, RebuildActResult, StartRebuild
from reactions_admin.doors.cli import actor_named, add_actor_argument, option, refuse, usage_error
from reactions_admin.reads.rebuilds import (
    KIND_LABELS,
    KINDS,
    RebuildState,
    TableDiff,
    read_rebuild_state,
    rebuild_state,
)

#: A cell of the diff table is cut to this many characters.
CELL = 28


class Command(BaseCommand):
    help = (
        "Rebuild a projection beside its live tables (audited, with a reason), swap the "
        "verified rebuild in, cancel it, or roll back the last swap. Without an act: the "
        "rebuild's progress and the diff its verification found."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("projection")
        chosen = parser.add_mutually_exclusive_group()
        chosen.add_argument(
            "--start",
            action="store_true",
            help=f"{START.doc} (The act when --reason comes without another act.)",
        )
        for flag, act in BY_FLAG.items():
            chosen.add_argument(option(flag), action="store_true", help=act.doc)
        parser.add_argument("--reason", help="Why you act (recorded in the audit trail).")
        parser.add_argument(
            "--swap-when-verified",
            action="store_true",
            help="With a start: the worker swaps as soon as verify() finds no problem.",
        )
        add_actor_argument(parser, required=False)
        parser.add_argument("--json", action="store_true", help="Print JSON (as the REST API).")

    def handle(self, *args: Any, **options: Any) -> None:
        act: Act[Any, RebuildActResult] | None = next(
            (a for flag, a in BY_FLAG.items() if options[flag]), None
        )
        if act is None and (options["start"] or options["reason"] is not None):
            act = START
        if options["swap_when_verified"] and act is not START:
            usage_error("--swap-when-verified goes with starting a rebuild.")
        try:
            if act is None:
                self._show(options)
                return
            if options["reason"] is None:
                usage_error("--reason is required to act (why, for the audit trail).")
            if options["username"] is None:
                raise errors.NotAuthenticated("name the acting user with --as USERNAME.")
            actor = actor_named(options["username"])
            name, reason = options["projection"], options["reason"]
            given = (
                StartRebuild(name, reason, options["swap_when_verified"])
                if act is START
                else OnSubscriber(name, reason)
            )
            result = act(given, actor, via="cli")
        except errors.ReactionsError as exc:
            refuse(exc)
        if options["json"]:
            self.stdout.write(json.dumps(result.as_payload(), indent=2))
            return
        self.stdout.write(f"{act.verb}: {result.text()}")

    def _show(self, options: dict[str, Any]) -> None:
        name = options["projection"]
        if options["username"] is None:
            state = read_rebuild_state(name)
        else:
            state = rebuild_state(name, actor_named(options["username"]))
        if options["json"]:
            self.stdout.write(json.dumps(state.as_json(), indent=2, default=str))
            return
        for line in state_lines(state):
            self.stdout.write(line)


def state_lines(state: RebuildState) -> list[str]:
    """The rebuild's state in words and tables."""
    lines = [f"{state.projection} ({state.kind})"]
    if state.problems:
        lines.append("Not rebuildable: " + "; ".join(state.problems))
    p = state.progress
    if p is None:
        lines.append("No rebuild so far.")
    else:
        eta = "-" if p.eta_seconds is None else f"{p.eta_seconds:.0f}s"
        lines.append(
            f"Rebuild {p.phase_label}: {p.events_done} of {p.events_total} events, "
            f"{p.rate:.0f} events/s, ETA {eta}; started {p.started_at:%Y-%m-%d %H:%M:%S} UTC "
            f"by {p.started_by or 'the system'}: {p.reason}"
        )
        if p.note:
            lines.append(f"  {p.note}")
        if p.last_error:
            lines.append(f"  last error: {p.last_error.splitlines()[0][:200]}")
        if p.kept_until is not None:
            lines.append(f"  the previous tables are kept until {p.kept_until:%Y-%m-%d %H:%M} UTC")
    if state.estimate is not None and not state.open:
        e = state.estimate
        duration = (
            "unknown (no rate measured yet)" if e.seconds is None else f"about {e.seconds:.0f}s"
        )
        lines.append(
            f"A rebuild now replays {e.events} events ({duration}) and takes about "
            f"{e.extra_bytes / 1_048_576:.1f} MiB more disk ({', '.join(e.tables) or 'no tables'})."
        )
    if state.acts:
        lines.append("Acts now: " + ", ".join(option(act) for act in state.acts))
    diff = state.diff
    if diff is None:
        return lines
    at = "/".join(str(p) for p in diff.position) if diff.position else "?"
    problems = "; ".join(diff.problems) if diff.problems else "none"
    lines += ["", f"Diff at position {at}: {diff.changed_rows} row(s) change; verify(): {problems}"]
    for table in diff.tables:
        lines += table_lines(table)
    return lines


def _cell(value: Any, changed: bool) -> str:
    text = "∅" if value is None else json.dumps(value) if not isinstance(value, str) else value
    text = text.replace("\n", " ")
    text = text if len(text) <= CELL else text[: CELL - 1] + "…"
    return text + ("*" if changed else "")


def table_lines(table: TableDiff) -> list[str]:
    """One table of the diff: its counts, then each kind's samples side by side (a ``live``
    and a ``new`` line per row; ``*`` marks a changed column)."""
    c = table.counts
    lines = [
        "",
        f"{table.table}: {table.live_rows} live row(s), {table.new_rows} new; "
        f"{c['only_live']} only in live, {c['only_new']} only in new, {c['differing']} differing"
        f" (matched by {', '.join(table.matched_by)})",
    ]
    for kind in KINDS:
        samples = table.samples[kind]
        if not samples:
            continue
        lines.append(f"  {KIND_LABELS[kind]} ({len(samples)} of {c[kind]} shown):")
        columns = table.columns
        if kind == "differing":  # the key, then only what changed: a wide table stays legible
            changed = {column for sample in samples for column in sample.changed}
            columns = [col for col in columns if col in table.matched_by or col in changed]
        rows = [["", *columns]]
        for sample in samples:
            cells = {cell.column: cell for cell in sample.cells}
            for side in ("live", "new"):
                if (side == "live" and kind == "only_new") or (
                    side == "new" and kind == "only_live"
                ):
                    continue
                rows.append(
                    [side]
                    + [
                        _cell(getattr(cells[col], side), cells[col].changed) if col in cells else ""
                        for col in columns
                    ]
                )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines += ["    " + "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
                  for row in rows]  # fmt: skip
    return lines
