"""The rebuild's admin door, on the Bookmarks pages: the actions "Rebuild…", "Swap the
rebuild in…", "Cancel the rebuild…", "Roll back the last swap…" and the rebuild page of a
projection (its progress and the diff its verification found, side by side).

Like ``delete_selected``: an action shows a confirmation page (for a start: the events a
rebuild replays, the rate measured so far, the estimated duration and the extra disk,
before you confirm) asking for a reason; the confirmation calls the one handler for each
selected projection and returns to the changelist with the outcome as a message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from reactions_admin import errors
from reactions_admin.acts.act import Act, OnSubscriber
from reactions_admin.acts.rebuilds import handler
from reactions_admin.acts.rebuilds.handler import RebuildActResult, StartRebuild
from reactions_admin.doors.admin.actions import (
    AdminAction,
    acted,
    admin_action,
    selection_is_storable,
)
from reactions_admin.reads.rebuild_progress import progress_text
from reactions_admin.reads.rebuilds import (
    KIND_LABELS,
    KINDS,
    RebuildState,
    TableDiff,
    read_rebuild_state,
    rebuild_state,
)
from subscribers import rebuilds as engine
from subscribers.models import Bookmark

ACTION_TEMPLATE = "admin/subscribers/bookmark/rebuild_action.html"
PAGE_TEMPLATE = "admin/subscribers/bookmark/rebuild.html"
#: A cell of the diff table is cut to this many characters (the full value in its title).
CELL = 60


class RebuildForm(forms.Form):
    """The operator's reason (recorded in the audit trail); for a start, whether the worker
    swaps as soon as the projection's ``verify()`` passes."""

    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text="Why you act; recorded in the audit trail.",
    )
    swap_when_verified = forms.BooleanField(
        required=False,
        label="Swap when verified",
        help_text="Swap as soon as verify() finds no problem, without waiting for you to read "
        "the diff (the diff is recorded in the decision).",
    )


@dataclass(frozen=True)
class RebuildAction:
    """One rebuild act as the changelist offers it: the act, the action's name."""

    act: Act[Any, RebuildActResult]
    action: str

    @property
    def verb(self) -> str:
        return self.act.verb

    @property
    def starts(self) -> bool:
        return self.act is handler.START

    def given(self, name: str, form: RebuildForm) -> OnSubscriber:
        """The act's input for ``name``: the form's reason (and, for a start, its option)."""
        reason = form.cleaned_data["reason"]
        if self.starts:
            return StartRebuild(name, reason, form.cleaned_data["swap_when_verified"])
        return OnSubscriber(name, reason)


START = RebuildAction(handler.START, "rebuild_action")
SWAP = RebuildAction(handler.SWAP, "swap_rebuild_action")
CANCEL = RebuildAction(handler.CANCEL, "cancel_rebuild_action")
ROLL_BACK = RebuildAction(handler.ROLL_BACK, "roll_back_rebuild_action")
PAUSE = RebuildAction(handler.PAUSE, "pause_rebuild_action")
RESUME = RebuildAction(handler.RESUME, "resume_rebuild_action")
RETRY = RebuildAction(handler.RETRY, "retry_rebuild_action")


def _states(names: list[str]) -> list[RebuildState | errors.ReactionsError]:
    found: list[RebuildState | errors.ReactionsError] = []
    for name in names:
        try:
            found.append(read_rebuild_state(name))
        except errors.ReactionsError as exc:
            found.append(exc)
    return found


def _run(
    act: RebuildAction,
    modeladmin: admin.ModelAdmin[Bookmark],
    request: HttpRequest,
    queryset: QuerySet[Bookmark],
) -> TemplateResponse | None:
    if not selection_is_storable(request, modeladmin, "projection"):
        return None
    names = [bookmark.subscriber_name for bookmark in queryset.order_by("subscriber_name")]
    form = RebuildForm(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        for name in names:
            acted(request, act.act, act.given(name, form), about=f"{name}: ", done=f"{act.verb}: ")
        return None
    context: dict[str, Any] = {
        **modeladmin.admin_site.each_context(request),
        "title": f"{act.verb}: {len(names)} projection(s)",
        "opts": modeladmin.model._meta,
        "act": act,
        "states": _states(names),
        "form": form,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, ACTION_TEMPLATE, context)


def rebuild_action_for(act: RebuildAction) -> AdminAction[Bookmark]:
    """The changelist action for ``act``: a confirmation page (for a start: what it will
    cost), then the act for each selected projection, its outcome as a message."""

    def action(
        modeladmin: admin.ModelAdmin[Bookmark], request: HttpRequest, queryset: QuerySet[Bookmark]
    ) -> TemplateResponse | None:
        return _run(act, modeladmin, request, queryset)

    return admin_action(act.act, act.action, action)


rebuild_action = rebuild_action_for(START)
swap_rebuild_action = rebuild_action_for(SWAP)
cancel_rebuild_action = rebuild_action_for(CANCEL)
roll_back_rebuild_action = rebuild_action_for(ROLL_BACK)
pause_rebuild_action = rebuild_action_for(PAUSE)
resume_rebuild_action = rebuild_action_for(RESUME)
retry_rebuild_action = rebuild_action_for(RETRY)


#: The acts by the names ``RebuildState.acts`` gives them.
BY_KEY = {
    "start": START, "swap": SWAP, "pause": PAUSE, "resume": RESUME, "retry": RETRY,
    "cancel": CANCEL, "roll_back": ROLL_BACK,
}  # fmt: skip
ACTIONS = [
    rebuild_action, swap_rebuild_action, cancel_rebuild_action, roll_back_rebuild_action,
    pause_rebuild_action, resume_rebuild_action, retry_rebuild_action,
]  # fmt: skip


# --- the rebuild page: progress and the diff side by side -----------------------------------


def _text(value: Any) -> str:
    if value is None:
        return "∅"
    return value if isinstance(value, str) else json.dumps(value)


@dataclass(frozen=True)
class DiffCell:
    """One value of the diff table: cut to ``CELL`` characters (``full`` in its title), and
    whether it changed."""

    text: str
    full: str
    changed: bool


@dataclass(frozen=True)
class DiffLine:
    """One side of one sample row: ``live`` or ``new``, a cell per column."""

    side: str
    first: bool
    cells: list[DiffCell]


@dataclass(frozen=True)
class DiffSection:
    """One kind of difference in one table (only live, only new, differing): how many rows
    in all, and the sample lines shown."""

    kind: str
    label: str
    total: int
    columns: list[str]
    lines: list[DiffLine]


def diff_sections(table: TableDiff) -> list[DiffSection]:
    """Each kind's samples as table lines: a ``live`` and a ``new`` line per row (one of
    them for a row found on one side only), each changed cell marked."""
    sections: list[DiffSection] = []
    for kind in KINDS:
        lines: list[DiffLine] = []
        for sample in table.samples[kind]:
            cells = {cell.column: cell for cell in sample.cells}
            sides = {"only_live": ("live",), "only_new": ("new",)}.get(kind, ("live", "new"))
            for index, side in enumerate(sides):
                row: list[DiffCell] = []
                for column in table.columns:
                    cell = cells.get(column)
                    full = _text(getattr(cell, side)) if cell is not None else ""
                    short = full if len(full) <= CELL else full[: CELL - 1] + "…"
                    row.append(DiffCell(short, full, cell is not None and cell.changed))
                lines.append(DiffLine(side, index == 0, row))
        if lines or table.counts[kind]:
            sections.append(
                DiffSection(kind, KIND_LABELS[kind], table.counts[kind], table.columns, lines)
            )
    return sections


def rebuild_page(
    request: HttpRequest, name: str, modeladmin: admin.ModelAdmin[Bookmark]
) -> TemplateResponse:
    """A projection's rebuild: progress, estimate, acts, and the diff side by side."""
    context: dict[str, Any] = {
        **modeladmin.admin_site.each_context(request),
        "opts": modeladmin.model._meta,
        "name": name,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    try:
        state = rebuild_state(name, request.user)
    except errors.ReactionsError as exc:
        context |= {"title": f"Rebuild of {name}", "error": exc}
        return TemplateResponse(request, PAGE_TEMPLATE, context, status=exc.status)
    can_act = request.user.has_perm(handler.REBUILD_PERMISSION)
    context |= {
        "title": f"Rebuild of {name}",
        "state": state,
        "progress": state.progress,
        "diff": state.diff,
        "tables": [(table, diff_sections(table)) for table in state.diff.tables]
        if state.diff
        else [],
        "acts": [act for key, act in BY_KEY.items() if key in state.acts and can_act],
    }
    return TemplateResponse(request, PAGE_TEMPLATE, context)


def rebuild_summary(bookmark: Bookmark) -> SafeString | str:
    """The projection's page: its latest rebuild in one line, and a link to its page."""
    if bookmark.kind != Bookmark.Kind.PROJECTION:
        return "— (a reaction is never rebuilt: its effects already happened)"
    url = reverse("admin:subscribers_bookmark_rebuild", args=[bookmark.subscriber_name])
    rebuild = engine.current_rebuild(bookmark.subscriber_name)
    if rebuild is None:
        return format_html('none so far — <a href="{}">what a rebuild would take</a>', url)
    text = progress_text(engine.rebuild_progress(rebuild))
    return format_html('{} — <a href="{}">progress and diff</a>', text, url)
