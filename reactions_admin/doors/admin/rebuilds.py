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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from reactions_admin import errors
from reactions_admin.acts.dismissal.handler import is_storable
from reactions_admin.acts.rebuilds import handler
from reactions_admin.acts.rebuilds.handler import RebuildActResult
from reactions_admin.reads.rebuilds import (
    KIND_LABELS,
    KINDS,
    RebuildState,
    TableDiff,
    progress_text,
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
class RebuildAct:
    """One act as the admin offers it."""

    action: str
    verb: str
    run: Callable[[str, str, Any, bool], RebuildActResult]
    starts: bool = False


def _start(name: str, reason: str, user: Any, swap_when_verified: bool) -> RebuildActResult:
    return handler.start_rebuild(
        name, reason, user, swap_when_verified=swap_when_verified, via="admin"
    )


def _other(
    act: Callable[..., RebuildActResult],
) -> Callable[[str, str, Any, bool], RebuildActResult]:
    def run(name: str, reason: str, user: Any, swap_when_verified: bool) -> RebuildActResult:
        return act(name, reason, user, via="admin")

    return run


START = RebuildAct("rebuild_action", "Rebuild", _start, starts=True)
SWAP = RebuildAct("swap_rebuild_action", "Swap the rebuild in", _other(handler.swap_rebuild))
CANCEL = RebuildAct("cancel_rebuild_action", "Cancel the rebuild", _other(handler.cancel_rebuild))
ROLL_BACK = RebuildAct(
    "roll_back_rebuild_action", "Roll back the last swap", _other(handler.roll_back_rebuild)
)


def _states(names: list[str]) -> list[RebuildState | errors.ReactionsError]:
    found: list[RebuildState | errors.ReactionsError] = []
    for name in names:
        try:
            found.append(read_rebuild_state(name))
        except errors.ReactionsError as exc:
            found.append(exc)
    return found


def _run(
    act: RebuildAct,
    modeladmin: admin.ModelAdmin[Bookmark],
    request: HttpRequest,
    queryset: QuerySet[Bookmark],
) -> TemplateResponse | None:
    if not all(is_storable(pk) for pk in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)):
        modeladmin.message_user(request, "Select at least one projection.", messages.ERROR)
        return None
    names = [bookmark.subscriber_name for bookmark in queryset.order_by("subscriber_name")]
    form = RebuildForm(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        for name in names:
            try:
                result = act.run(
                    name,
                    form.cleaned_data["reason"],
                    request.user,
                    act.starts and form.cleaned_data["swap_when_verified"],
                )
            except errors.ReactionsError as exc:
                modeladmin.message_user(
                    request, f"{name}: {exc.detail} ({exc.code})", messages.ERROR
                )
                continue
            modeladmin.message_user(
                request,
                f"{act.verb} {result.subscriber_name}: {result.choice}, now "
                f"{result.phase.replace('_', ' ')}. Decision {result.decision_event_id}.",
                messages.SUCCESS,
            )
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


@admin.action(description="Rebuild…", permissions=["rebuild"])
def rebuild_action(
    modeladmin: admin.ModelAdmin[Bookmark], request: HttpRequest, queryset: QuerySet[Bookmark]
) -> TemplateResponse | None:
    """Start a rebuild of each selected projection, after showing what it will cost."""
    return _run(START, modeladmin, request, queryset)


@admin.action(description="Swap the rebuild in…", permissions=["rebuild"])
def swap_rebuild_action(
    modeladmin: admin.ModelAdmin[Bookmark], request: HttpRequest, queryset: QuerySet[Bookmark]
) -> TemplateResponse | None:
    """Swap each selected projection's verified rebuild in."""
    return _run(SWAP, modeladmin, request, queryset)


@admin.action(description="Cancel the rebuild…", permissions=["rebuild"])
def cancel_rebuild_action(
    modeladmin: admin.ModelAdmin[Bookmark], request: HttpRequest, queryset: QuerySet[Bookmark]
) -> TemplateResponse | None:
    """Cancel each selected projection's rebuild and drop its new tables."""
    return _run(CANCEL, modeladmin, request, queryset)


@admin.action(description="Roll back the last swap…", permissions=["rebuild"])
def roll_back_rebuild_action(
    modeladmin: admin.ModelAdmin[Bookmark], request: HttpRequest, queryset: QuerySet[Bookmark]
) -> TemplateResponse | None:
    """Swap the tables each selected projection's last swap kept back in."""
    return _run(ROLL_BACK, modeladmin, request, queryset)


#: The acts by the names ``RebuildState.acts`` gives them.
BY_KEY = {"start": START, "swap": SWAP, "cancel": CANCEL, "roll_back": ROLL_BACK}
#: The acts by the names ``RebuildState.acts`` gives them.
BY_KEY = {"start": START, "swap": SWAP, "cancel": CANCEL, "roll_back": ROLL_BACK}
ACTIONS = [rebuild_action, swap_rebuild_action, cancel_rebuild_action, roll_back_rebuild_action]


# --- the rebuild page: progress and the diff side by side -----------------------------------


def _text(value: Any) -> str:
    if value is None:
        return "∅"
    return value if isinstance(value, str) else json.dumps(value)


@dataclass(frozen=True)
class DiffCell:
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
