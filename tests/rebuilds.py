"""Projections with tables of their own, for the rebuild tests (selected by dotted path or
built directly).

Their models are test-only, in the tests' own app (``tests.readmodels``, label
``test_readmodels``, installed by tests/settings.py, no migrations); the
``rebuild_tables`` fixture (tests/conftest.py) makes their tables afresh for each test
and drops them after, with every rebuild schema and role.
``Added`` events carry a ``key`` and an ``amount``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, ClassVar

from django.db import connection, models
from django.db.models import F, Q, Sum

from eventstore.types import RecordedEvent


class RbModel(models.Model):
    """A model of the rebuild tests, in the tests' own app, named by its primary key."""

    class Meta:
        abstract = True
        app_label = "test_readmodels"

    def __str__(self) -> str:
        return str(self.pk)


class RbTotal(RbModel):
    """The total per key."""

    key = models.CharField(max_length=50, primary_key=True)
    n = models.BigIntegerField(default=0)
    total = models.BigIntegerField(default=0)

    objects: ClassVar[models.Manager[RbTotal]] = models.Manager()

    class Meta(RbModel.Meta):
        db_table = "rb_totals"
        constraints = [models.CheckConstraint(condition=Q(n__gte=0), name="rb_totals_n_counted")]
        indexes = [models.Index(fields=["total"], name="rb_totals_by_total")]


class RbEntry(RbModel):
    """One row per event: a surrogate key, matched by its natural key (the event id)."""

    event_id = models.UUIDField(unique=True)
    key = models.ForeignKey(RbTotal, on_delete=models.CASCADE, db_column="key")
    amount = models.BigIntegerField()

    objects: ClassVar[models.Manager[RbEntry]] = models.Manager()

    class Meta(RbModel.Meta):
        db_table = "rb_entries"
        indexes = [models.Index(fields=["key", "amount"], name="rb_entries_key_amount")]


class RbLonely(RbModel):
    """Declared by ``PointedAt``; ``RbPointer`` points at it from outside (no table made)."""

    objects: ClassVar[models.Manager[RbLonely]] = models.Manager()

    class Meta(RbModel.Meta):
        db_table = "rb_lonely"


class RbPointer(RbModel):
    lonely = models.ForeignKey(RbLonely, on_delete=models.CASCADE)

    objects: ClassVar[models.Manager[RbPointer]] = models.Manager()

    class Meta(RbModel.Meta):
        db_table = "rb_pointer"


class RbNote(RbModel):
    """A table no rebuildable projection declares (the guard's target)."""

    key = models.CharField(max_length=50)
    text = models.TextField()

    objects: ClassVar[models.Manager[RbNote]] = models.Manager()

    class Meta(RbModel.Meta):
        db_table = "rb_notes"


#: Every rebuild schema and role of this database, and the test tables.
DROP_REBUILD_LEFTOVERS = """
DO $$
DECLARE name text;
BEGIN
    FOR name IN SELECT nspname FROM pg_namespace
                WHERE nspname LIKE 'eventdesk\\_rebuild\\_%' OR nspname LIKE 'eventdesk\\_kept\\_%'
    LOOP
        EXECUTE format('DROP SCHEMA %I CASCADE', name);
    END LOOP;
    FOR name IN SELECT rolname FROM pg_roles WHERE rolname LIKE 'eventdesk\\_rebuild\\_' ||
                (SELECT oid FROM pg_database WHERE datname = current_database()) || '\\_%'
    LOOP
        EXECUTE format('DROP OWNED BY %I', name);
        EXECUTE format('DROP ROLE %I', name);
    END LOOP;
END $$;
DROP TABLE IF EXISTS rb_entries, rb_totals, rb_notes, rb_outside CASCADE;
"""


#: The tables the fixture creates, in order (an entry points at its total).
TABLE_MODELS = (RbTotal, RbEntry, RbNote)


class OnTotalsTables:
    """What each projection onto rb_totals and rb_entries declares: its tables, the events
    it takes, its batch."""

    models = (RbTotal, RbEntry)
    event_types = ("Added",)
    batch_size = 50


class Totals(OnTotalsTables):
    """The plain-ORM projection. ``factor`` is its "bug": a deploy changes it."""

    name = "test.rb_totals"
    factor: ClassVar[int] = 1
    #: Set: ``apply`` waits on it (a kill lands mid-build).
    gate: ClassVar[threading.Event | None] = None

    def apply(self, event: RecordedEvent) -> None:
        if self.gate is not None:
            self.gate.wait(30)
        key, amount = str(event.data["key"]), int(event.data["amount"]) * self.factor
        RbTotal.objects.get_or_create(key=key)
        RbTotal.objects.filter(key=key).update(n=F("n") + 1, total=F("total") + amount)
        RbEntry.objects.create(event_id=event.event_id, key_id=key, amount=amount)

    def verify(self) -> list[str]:
        problems = []
        entries = RbEntry.objects.aggregate(s=Sum("amount"))["s"] or 0
        totals = RbTotal.objects.aggregate(s=Sum("total"))["s"] or 0
        if entries != totals:
            problems.append(f"the entries add up to {entries}, the totals to {totals}")
        return problems


class KillableTotals(Totals):
    """``Totals`` for a worker process a test kills. ``EVENTDESK_RB_SLOW`` (seconds per event, in
    the rebuild only) stretches the build; with ``EVENTDESK_RB_SWAP_MARKER`` set, the rebuild
    stalls inside the swap (after writing that file) and refuses to follow the live
    projection in a batch, so that the swap has events of its own to apply."""

    name = "test.rb_killable"

    def apply(self, event: RecordedEvent) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('search_path'), current_setting('lock_timeout')")
            path, lock_timeout = cursor.fetchone()
        if "eventdesk_rebuild" in path:
            marker = os.environ.get("EVENTDESK_RB_SWAP_MARKER")
            if marker and lock_timeout == "100ms":  # the swap's transaction
                Path(marker).write_text("in the swap")
                time.sleep(120)
            elif marker:
                raise RuntimeError("not following the live projection in this test")
            time.sleep(float(os.environ.get("EVENTDESK_RB_SLOW", "0")))
        super().apply(event)


class BrokenInvariant(Totals):
    """``verify`` always finds a problem (the swap must be refused)."""

    def verify(self) -> list[str]:
        return ["no total may be odd"]


class RawTotals(OnTotalsTables):
    """The same rows through raw SQL in ``apply_batch`` (unqualified table names)."""

    name = "test.rb_raw_totals"
    #: A table it writes without declaring it ('' for none).
    undeclared: ClassVar[str] = ""

    def apply_batch(self, events: list[RecordedEvent]) -> None:
        with connection.cursor() as cursor:
            for event in events:
                key, amount = str(event.data["key"]), int(event.data["amount"])
                cursor.execute(
                    "INSERT INTO rb_totals (key, n, total) VALUES (%s, 1, %s)"
                    " ON CONFLICT (key) DO UPDATE"
                    " SET n = rb_totals.n + 1, total = rb_totals.total + EXCLUDED.total",
                    [key, amount],
                )
                cursor.execute(
                    "INSERT INTO rb_entries (event_id, key, amount) VALUES (%s, %s, %s)",
                    [event.event_id, key, amount],
                )
                if self.undeclared:
                    cursor.execute(
                        f"INSERT INTO {self.undeclared} (subscriber, event_id, position,"
                        " event_type) VALUES (%s, %s, %s, %s)",
                        [self.name, event.event_id, event.position, event.event_type],
                    )


class WritesNotes(Totals):
    """Writes a note per event through the ORM, to a table it does not declare."""

    name = "test.rb_writes_notes"

    def apply(self, event: RecordedEvent) -> None:
        super().apply(event)
        RbNote.objects.create(key=str(event.data["key"]), text="seen")


class FailsOnThirteen(Totals):
    """Fails on the amount 13 once ``armed`` (after the live projection went past it)."""

    name = "test.rb_fails"
    armed: ClassVar[bool] = False

    def apply(self, event: RecordedEvent) -> None:
        if self.armed and event.data["amount"] == 13:
            raise ValueError("thirteen")
        super().apply(event)


class QualifiedWriter(RawTotals):
    """Names the live schema in its writes: ``public.rb_totals``."""

    name = "test.rb_qualified"

    def apply_batch(self, events: list[RecordedEvent]) -> None:
        with connection.cursor() as cursor:
            for event in events:
                cursor.execute(
                    "INSERT INTO public.rb_totals (key, n, total) VALUES (%s, 1, %s)"
                    " ON CONFLICT (key) DO UPDATE SET n = public.rb_totals.n + 1",
                    [str(event.data["key"]), int(event.data["amount"])],
                )


class PointedAt:
    """Declares ``RbLonely``, which ``RbPointer`` points at from outside."""

    name = "test.rb_pointed_at"
    models = (RbLonely,)

    def apply(self, event: RecordedEvent) -> None:
        pass


class NoModels:
    name = "test.rb_no_models"

    def apply(self, event: RecordedEvent) -> None:
        pass


class TwinTotals(Totals):
    """Declares the same tables as ``Totals`` (the system check's error)."""

    name = "test.rb_twin"


def rows(model: type[models.Model], schema: str = "public") -> list[tuple[Any, ...]]:
    """Every row of ``model``'s table in ``schema``, without a surrogate id, sorted."""
    table = model._meta.db_table
    columns = [
        f.column
        for f in model._meta.concrete_fields
        if not isinstance(f, models.AutoField | models.BigAutoField)
    ]
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT {", ".join(columns)} FROM "{schema}"."{table}" ORDER BY 1, 2')
        return list(cursor.fetchall())


def replayed(factor: int = 1) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The rows of ``rb_totals`` and ``rb_entries`` (as ``rows`` reads them) that a replay
    from scratch of every committed ``Added`` event gives."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    entries = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_id, data FROM events WHERE event_type = 'Added'"
            " ORDER BY transaction_id, position"
        )
        for event_id, raw in cursor.fetchall():
            data = json.loads(raw) if isinstance(raw, str) else raw
            key, amount = str(data["key"]), int(data["amount"]) * factor
            totals[key][0] += 1
            totals[key][1] += amount
            entries.append((event_id, key, amount))
    return sorted((k, n, t) for k, (n, t) in totals.items()), sorted(entries)
