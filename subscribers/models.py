"""Bookmarks: how far each subscriber has followed the event store, and its health."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now

from eventstore.types import Cursor


class Bookmark(models.Model):
    """One row per subscriber (``projection_bookmarks``).

    The cursor ``(last_transaction_id, last_position)`` is the last event the
    subscriber is done with. It only moves forward, except by an explicit
    projection rebuild. The rest is the worker's operational state.
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
    failing_event_id = models.UUIDField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_traceback = models.TextField(blank=True, default="")
    failed_at = models.DateTimeField(null=True, blank=True)
    next_retry_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=200, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
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
