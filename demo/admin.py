"""The demo's read models in the admin: read-only (the projections write them)."""

from __future__ import annotations

from django.contrib import admin

from demo.models import AgentScorecard, AgentStats, Caution, FailedRun, Run
from eventstore.admin import ReadOnlyAdmin


class ReadModelAdmin(ReadOnlyAdmin):
    """Rows a projection owns: shown, never edited by hand."""


@admin.register(Run)
class RunAdmin(ReadModelAdmin):
    list_display = ("run_id", "agent", "task", "status", "steps", "tokens", "cautions",
                    "started_at", "finished_at", "has_debrief")  # fmt: skip
    list_filter = ("status", "agent")
    search_fields = ("run_id", "task", "outcome", "debrief")

    @admin.display(boolean=True, description="debrief")
    def has_debrief(self, run: Run) -> bool:
        return bool(run.debrief)


@admin.register(AgentStats)
class AgentStatsAdmin(ReadModelAdmin):
    list_display = ("agent", "runs_started", "runs_completed", "runs_failed", "steps", "cautions")


@admin.register(Caution)
class CautionAdmin(ReadModelAdmin):
    list_display = ("raised_at", "run_id", "agent", "severity", "short_message", "has_note")
    list_filter = ("severity", "agent")

    @admin.display(description="message")
    def short_message(self, caution: Caution) -> str:
        return caution.message[:80]

    @admin.display(boolean=True, description="note")
    def has_note(self, caution: Caution) -> bool:
        return bool(caution.note)


@admin.register(AgentScorecard)
class AgentScorecardAdmin(ReadModelAdmin):
    list_display = ("agent", "runs", "completed", "failed", "success_percent", "tokens")


@admin.register(FailedRun)
class FailedRunAdmin(ReadModelAdmin):
    list_display = ("run_id", "agent", "failed_at", "error")
