"""The ``events`` table: append-only, read in ``(transaction_id, position)`` order."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models.functions import Now

from eventstore.fields import Xid8Field


class CurrentTransactionId(models.Func):
    """``pg_current_xact_id()``: the writing transaction's id, assigned by the database."""

    function = "pg_current_xact_id"
    template = "%(function)s()"
    output_field = Xid8Field()


class Event(models.Model):
    """One recorded event. Rows are inserted by ``append_streams`` and never changed."""

    position = models.BigAutoField(primary_key=True)
    transaction_id = Xid8Field(db_default=CurrentTransactionId(), editable=False)
    event_id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    stream_id = models.CharField(max_length=200)
    stream_version = models.BigIntegerField()
    event_type = models.CharField(max_length=200)
    data = models.JSONField(default=dict)
    metadata = models.JSONField(default=dict)
    recorded_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        db_table = "events"
        ordering = ("transaction_id", "position")
        constraints = [
            models.UniqueConstraint(
                fields=["stream_id", "stream_version"], name="events_stream_version_unique"
            ),
        ]
        indexes = [
            # The global order: every subscriber reads along this index.
            models.Index(fields=["transaction_id", "position"], name="events_global_order"),
            models.Index(
                fields=["event_type", "transaction_id", "position"], name="events_type_order"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.stream_id}@{self.stream_version}"
