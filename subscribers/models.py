"""Bookmarks: how far each subscriber has followed the event store, and its health."""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.db.models.functions import Now

from eventstore.types import Cursor


class FailingEvent(models.Model):
    """The event a subscriber (or a rebuild) is stuck on: its id, the error and traceback of
    the last attempt, when it failed, and when it is tried again."""

    failing_event_id = models.UUIDField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_traceback = models.TextField(blank=True, default="")
    failed_at = models.DateTimeField(null=True, blank=True)
    next_retry_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class Bookmark(FailingEvent):
    """One row per subscriber (``projection_bookmarks``).

    The cursor ``(last_transaction_id, last_position)`` is the last event the
    subscriber is done with. It only moves forward, except by an explicit
    projection rebuild, and after a crash of the database server: a projection's
    batches commit without waiting for the disk, so the last of them may be lost, its
    bookmark with its writes, and be applied again (docs/projections.md). The rest is the
    worker's operational state.
    """

    class Kind(models.TextChoices):
        PROJECTION = "projection", "Projection"
        REACTION = "reaction", "Reaction"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        RETRYING = "retrying", "Retrying"
        WEDGED = "wedged", "Wedged"
        PAUSED = "paused", "Paused"

    subscriber_name = models.CharField(max_length=200, primary_key=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    last_transaction_id = models.BigIntegerField(default=0)
    last_position = models.BigIntegerField(default=0)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    attempts = models.PositiveIntegerField(default=0, help_text="Attempts on the failing event.")
    lease_owner = models.CharField(max_length=200, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    #: A stream-ordered reaction whose unfinished rows reached ``intake_limit``: since when
    #: it has stopped taking in new events (None while intake runs).
    intake_paused_at = models.DateTimeField(null=True, blank=True)
    #: An operator's pause (``status`` paused): when, by whom, why, and the status it
    #: returns to on resume. No worker runs a paused subscriber.
    paused_at = models.DateTimeField(null=True, blank=True)
    paused_by = models.CharField(max_length=150, blank=True, db_default="")
    pause_reason = models.TextField(blank=True, db_default="")
    paused_from = models.CharField(max_length=20, blank=True, db_default="")
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "projection_bookmarks"
        ordering = ("subscriber_name",)

    def __str__(self) -> str:
        return self.subscriber_name

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.last_transaction_id, self.last_position)


class ReactionWork(models.Model):
    """One event a stream-ordered reaction has taken in and not finished (``reaction_work``).

    A row is pending, in flight (a live lease), waiting for a retry, or parked. It
    runs only while it is the earliest row of its stream (in ``(transaction_id,
    position)`` order), so each stream is handled one event at a time, in order.
    The row is deleted in the transaction that appends the reaction's results.
    """

    subscriber_name = models.CharField(max_length=200)
    event_id = models.UUIDField()
    transaction_id = models.BigIntegerField()
    position = models.BigIntegerField()
    stream_id = models.CharField(max_length=200)
    event_type = models.CharField(max_length=200)
    attempts = models.PositiveIntegerField(default=0)
    lease_token = models.CharField(max_length=250, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    next_retry_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_traceback = models.TextField(blank=True, default="")
    failed_at = models.DateTimeField(null=True, blank=True)
    #: Set when the attempts ran out: this row and every later row of its stream wait.
    parked_at = models.DateTimeField(null=True, blank=True)
    #: When this row first parked. A "retry now" clears ``parked_at`` and one more failure
    #: sets it again, to that moment; this stays, so the age says how long it is stuck.
    first_parked_at = models.DateTimeField(null=True, blank=True)
    taken_in_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        db_table = "reaction_work"
        ordering = ("subscriber_name", "transaction_id", "position")
        constraints = [
            models.UniqueConstraint(
                fields=["subscriber_name", "event_id"], name="reaction_work_once_per_event"
            )
        ]
        indexes = [
            # The earliest unfinished row of a stream, and the rows behind it.
            models.Index(
                fields=["subscriber_name", "stream_id", "transaction_id", "position"],
                name="reaction_work_stream_order",
            ),
            # Claims scan in global order.
            models.Index(
                fields=["subscriber_name", "transaction_id", "position"],
                name="reaction_work_global_order",
            ),
            # Parked heads: few rows, probed for every row counted against intake_limit.
            models.Index(
                fields=["subscriber_name", "stream_id"],
                name="reaction_work_parked",
                condition=models.Q(parked_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subscriber_name}: {self.event_id} ({self.stream_id})"

    @property
    def parked_since(self) -> datetime | None:
        """When its stream got stuck: the first parking (a failed retry parks it again and
        does not restart the age), as ``oldest_parked`` counts it in SQL."""
        return self.first_parked_at or self.parked_at


class SubscriberSample(models.Model):
    """One subscriber's cursor and lag at one moment (``subscriber_samples``): the lag trend.

    The worker samples every ``history_sample_seconds`` into buckets of that width;
    ``(subscriber_name, bucket)`` is unique, so several workers sampling at once write
    one row per bucket. Rows older than ``history_retention_seconds`` are pruned.
    """

    subscriber_name = models.CharField(max_length=200)
    #: The sampling time, floored to the sampling interval.
    bucket = models.DateTimeField()
    transaction_id = models.BigIntegerField()
    position = models.BigIntegerField()
    #: The highest position in the events table when sampled (remaining work, for the ETA).
    head_position = models.BigIntegerField()
    #: Committed events it handles and has not done, up to ``METRICS_LAG_CAP``.
    lag_events = models.BigIntegerField()
    #: True when the count stopped at the cap (the lag is at least ``lag_events``).
    lag_capped = models.BooleanField(default=False)

    class Meta:
        db_table = "subscriber_samples"
        ordering = ("subscriber_name", "bucket")
        constraints = [
            models.UniqueConstraint(
                fields=["subscriber_name", "bucket"], name="subscriber_samples_once_per_bucket"
            )
        ]
        # Pruning deletes by age across subscribers.
        indexes = [models.Index(fields=["bucket"], name="subscriber_samples_bucket")]

    def __str__(self) -> str:
        return f"{self.subscriber_name} at {self.bucket:%Y-%m-%d %H:%M:%S}: {self.lag_events}"


class WorkerHeartbeat(models.Model):
    """One row per ``run_subscribers`` process (``worker_heartbeats``), refreshed every
    ``interval_seconds`` by the worker itself.

    A row whose ``last_seen_at`` is older than ``GONE_AFTER_INTERVALS`` of its own
    interval belongs to a worker that is gone (killed, frozen, cut off); a clean
    shutdown sets ``stopped_at``. ``worker_id`` is the lease owner the worker writes on
    bookmarks and (before ``#``) in its work rows' lease tokens.
    """

    worker_id = models.CharField(max_length=200, primary_key=True)
    host = models.CharField(max_length=255)
    pid = models.IntegerField()
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    interval_seconds = models.FloatField()
    #: The names of the subscribers this worker runs.
    subscribers = models.JSONField(default=list)
    #: What it is doing now: ``[{"subscriber", "event_id", "since", "attempt"}]``.
    doing = models.JSONField(default=list)
    stopped_at = models.DateTimeField(null=True, blank=True)
    #: Whether the worker's own check NOTIFY reached its listener (None: not known yet, or
    #: it does not listen). False: it only polls (see subscribers/listener.py).
    wakeups_working = models.BooleanField(null=True, blank=True)

    class Meta:
        db_table = "worker_heartbeats"
        ordering = ("-last_seen_at",)
        verbose_name = "worker"

    def __str__(self) -> str:
        return self.worker_id


class Rebuild(FailingEvent):
    """One rebuild of one projection: a subscriber of its own kind.

    ``(last_transaction_id, last_position)`` is its bookmark: the last event applied to
    the new tables in ``schema``. A projection has at most one rebuild that has not
    ended (a partial unique constraint), so the projection's name identifies it; ended
    rows stay as history, and a swapped one owns the kept tables until they are dropped.
    """

    class Phase(models.TextChoices):
        COPYING_SCHEMA = "copying_schema", "copying schema"
        BUILDING = "building", "building"
        INDEXING = "indexing", "indexing"
        CATCHING_UP = "catching_up", "catching up"
        VERIFYING = "verifying", "verifying"
        READY = "ready", "ready to swap"
        PAUSED = "paused", "paused"
        FAILED = "failed", "failed"
        SWAPPED = "swapped", "swapped"
        CANCELLED = "cancelled", "cancelled"
        ROLLED_BACK = "rolled_back", "rolled back"

    projection_name = models.CharField(max_length=200)
    phase = models.CharField(max_length=20, choices=Phase.choices, default=Phase.COPYING_SCHEMA)
    #: While paused (or failed): the phase that resume (or retry) returns to.
    resume_phase = models.CharField(max_length=20, blank=True, default="")
    reason = models.TextField()
    started_by = models.CharField(max_length=150, blank=True, default="")
    started_by_id = models.BigIntegerField(null=True, blank=True)
    #: Swap as soon as the projection's ``verify()`` finds no problem (a deploy script).
    swap_when_verified = models.BooleanField(default=False)
    #: The new tables live here (and, after a roll back, nothing does).
    schema = models.CharField(max_length=63)
    #: After the swap, the previous live tables wait here for a roll back.
    kept_schema = models.CharField(max_length=63)
    #: The role the rebuild's transactions take (``SET LOCAL ROLE``): it may write only
    #: in ``schema``.
    role_name = models.CharField(max_length=63)
    #: ``[{"model": "demo.Run", "table": "demo_runs", "schema": "public"}]``.
    tables = models.JSONField(default=list)
    #: The live tables' definitions when the new ones were made (the migration check).
    definitions = models.JSONField(default=dict)
    #: The rebuild's bookmark.
    last_transaction_id = models.BigIntegerField(default=0)
    last_position = models.BigIntegerField(default=0)
    #: Events of the projection's types applied, and the total to do (at the last look).
    events_done = models.BigIntegerField(default=0)
    events_total = models.BigIntegerField(default=0)
    #: Events per second over the recent batches (for the ETA).
    rate = models.FloatField(default=0.0)
    #: The batch size in force (it adapts to keep each transaction short).
    batch_size = models.PositiveIntegerField(default=1000)
    attempts = models.PositiveIntegerField(default=0)
    #: A worker doing a long step (indexing, verifying) holds a lease instead of a lock.
    lease_owner = models.CharField(max_length=250, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    #: A sentence for the operator about what it waits for ("the swap waits for locks…").
    note = models.TextField(blank=True, default="")
    #: The comparison at one position: ``{"position": [tx, pos], "tables": {...},
    #: "problems": [...]}`` (see ``subscribers.rebuilds.verify``).
    verification = models.JSONField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    #: Where both bookmarks stood at the swap (the kept tables' position).
    swapped_transaction_id = models.BigIntegerField(null=True, blank=True)
    swapped_position = models.BigIntegerField(null=True, blank=True)
    swapped_at = models.DateTimeField(null=True, blank=True)
    #: The swapped-in tables' definitions (the roll back's migration check).
    swapped_definitions = models.JSONField(null=True, blank=True)
    kept_until = models.DateTimeField(null=True, blank=True)
    kept_dropped_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    phase_changed_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())

    #: The phases a worker works on.
    WORKED_PHASES = (
        Phase.COPYING_SCHEMA,
        Phase.BUILDING,
        Phase.INDEXING,
        Phase.CATCHING_UP,
        Phase.VERIFYING,
        Phase.READY,
    )
    #: The phases of a rebuild that has not ended (one per projection at most).
    OPEN_PHASES = (*WORKED_PHASES, Phase.PAUSED, Phase.FAILED)

    class Meta:
        db_table = "projection_rebuilds"
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(
                fields=["projection_name"],
                condition=models.Q(
                    phase__in=[
                        "copying_schema",
                        "building",
                        "indexing",
                        "catching_up",
                        "verifying",
                        "ready",
                        "paused",
                        "failed",
                    ]
                ),
                name="projection_rebuilds_one_open",
            )
        ]
        indexes = [models.Index(fields=["projection_name", "-created_at"], name="rebuilds_latest")]

    def __str__(self) -> str:
        return f"rebuild of {self.projection_name} ({self.phase})"

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.last_transaction_id, self.last_position)

    @property
    def is_open(self) -> bool:
        return self.phase in self.OPEN_PHASES
