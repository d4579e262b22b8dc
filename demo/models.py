"""The demo's read models: written only by its projections, rebuilt from the events."""

from __future__ import annotations

from django.db import models


class KeyedRow(models.Model):
    """A read model's row, named by its key (a run's id, an agent's name)."""

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return str(self.pk)


class Run(KeyedRow):
    """One agent run, as the ``RunBoard`` projection sees it."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    run_id = models.CharField(max_length=100, primary_key=True)
    agent = models.CharField(max_length=100)
    task = models.CharField(max_length=300)
    model_name = models.CharField(max_length=100, blank=True, default="")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    steps = models.PositiveIntegerField(default=0)
    tokens = models.PositiveIntegerField(default=0)
    cautions = models.PositiveIntegerField(default=0)
    outcome = models.TextField(blank=True, default="")
    debrief = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "demo_runs"
        ordering = ("run_id",)


class AgentStats(KeyedRow):
    """Totals per agent (the ``AgentStatsProjection``)."""

    agent = models.CharField(max_length=100, primary_key=True)
    runs_started = models.PositiveIntegerField(default=0)
    runs_completed = models.PositiveIntegerField(default=0)
    runs_failed = models.PositiveIntegerField(default=0)
    steps = models.PositiveIntegerField(default=0)
    cautions = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "demo_agent_stats"
        ordering = ("agent",)
        verbose_name_plural = "agent stats"


class Caution(models.Model):
    """A caution raised during a run, with the note the ``CautionDrafter`` wrote for it."""

    caution_id = models.UUIDField(primary_key=True)
    run_id = models.CharField(max_length=100)
    agent = models.CharField(max_length=100)
    severity = models.CharField(max_length=20)
    message = models.TextField()
    raised_at = models.DateTimeField()
    note = models.TextField(blank=True, default="")

    class Meta:
        db_table = "demo_cautions"
        ordering = ("raised_at",)

    def __str__(self) -> str:
        return f"{self.severity}: {self.message[:60]}"


class AgentScorecard(KeyedRow):
    """How each agent's runs end (the ``AgentScorecards`` projection, ``demo.scorecards``):
    the projection the rebuild story repairs."""

    agent = models.CharField(max_length=100, primary_key=True)
    runs = models.PositiveIntegerField(default=0)
    completed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    tokens = models.PositiveIntegerField(default=0)
    #: completed / (completed + failed), in percent (null until a run ends).
    success_percent = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        db_table = "demo_scorecards"
        ordering = ("agent",)


class FailedRun(KeyedRow):
    """A run that failed, with its error (the ``AgentScorecards`` projection)."""

    run_id = models.CharField(max_length=100, primary_key=True)
    agent = models.CharField(max_length=100)
    error = models.TextField(blank=True, default="")
    failed_at = models.DateTimeField()

    class Meta:
        db_table = "demo_failed_runs"
        ordering = ("failed_at",)
