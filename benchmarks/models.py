"""Read models the benchmark subscribers write (tables exist only in the benchmark database)."""

from __future__ import annotations

from typing import ClassVar

from django.db import models


class TypeCount(models.Model):
    """One counter row per event type: the trivial projection of the catch-up benchmark."""

    projection = models.CharField(max_length=100)
    event_type = models.CharField(max_length=200)
    count = models.BigIntegerField(default=0)

    # Declared: mypy's Django plugin reads config.settings, where this app is not installed.
    objects: ClassVar[models.Manager[TypeCount]] = models.Manager()

    class Meta:
        db_table = "bench_type_counts"
        constraints = [
            models.UniqueConstraint(fields=["projection", "event_type"], name="bench_type_count_uq")
        ]

    def __str__(self) -> str:
        return f"{self.projection} {self.event_type}: {self.count}"


class Arrival(models.Model):
    """When a projection wrote an event (``clock_timestamp()``, in its transaction)."""

    event_id = models.UUIDField(primary_key=True)
    projection = models.CharField(max_length=100)
    projected_at = models.DateTimeField()

    objects: ClassVar[models.Manager[Arrival]] = models.Manager()

    class Meta:
        db_table = "bench_arrivals"

    def __str__(self) -> str:
        return f"{self.projection} {self.event_id} at {self.projected_at}"


class StreamRow(models.Model):
    """One row per stream (the catch-up's second workload, shaped like the demo's
    ``RunBoard``): how many events the stream has, its last type and position."""

    projection = models.CharField(max_length=100)
    stream_id = models.CharField(max_length=200)
    events = models.BigIntegerField(default=0)
    last_type = models.CharField(max_length=200, default="")
    last_position = models.BigIntegerField(default=0)

    objects: ClassVar[models.Manager[StreamRow]] = models.Manager()

    class Meta:
        db_table = "bench_stream_rows"
        constraints = [
            models.UniqueConstraint(fields=["projection", "stream_id"], name="bench_stream_row_uq")
        ]

    def __str__(self) -> str:
        return f"{self.projection} {self.stream_id}: {self.events}"


class RebuildStream(models.Model):
    """One row per stream in a table of its own (the rebuild benchmark's projection: the
    catch-up's ``StreamRow`` without the shared ``projection`` column, so that it can be
    rebuilt), with a secondary index for the rebuild's indexing phase."""

    stream_id = models.CharField(max_length=200, primary_key=True)
    events = models.BigIntegerField(default=0)
    last_type = models.CharField(max_length=200, default="")
    last_position = models.BigIntegerField(default=0, db_index=True)

    objects: ClassVar[models.Manager[RebuildStream]] = models.Manager()

    class Meta:
        db_table = "bench_rebuild_streams"

    def __str__(self) -> str:
        return f"{self.stream_id}: {self.events}"
