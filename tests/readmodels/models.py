"""Read models with every shape the unit of work must write as the ORM would: surrogate
ids, a composite unique key, ``auto_now``/``auto_now_add``, columns the code never sets,
and a parent whose children go with it (``on_delete=CASCADE``)."""

from __future__ import annotations

from typing import ClassVar

from django.db import models


class Tally(models.Model):
    """Counters under a composite key (like the benchmark's ``TypeCount``)."""

    group = models.CharField(max_length=20)
    name = models.CharField(max_length=20)
    count = models.IntegerField(default=0)
    total = models.BigIntegerField(default=0)
    note = models.CharField(max_length=40, default="never set")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Declared: mypy's Django plugin reads config.settings, where this app is not installed.
    objects: ClassVar[models.Manager[Tally]] = models.Manager()

    class Meta:
        db_table = "test_uow_tallies"
        constraints = [models.UniqueConstraint(fields=["group", "name"], name="test_uow_tally")]

    def __str__(self) -> str:
        return f"{self.group}/{self.name}: {self.count}"


class Board(models.Model):
    """A parent row with a surrogate id and a unique code."""

    id = models.BigAutoField(primary_key=True)
    code = models.CharField(max_length=20, unique=True)
    title = models.CharField(max_length=100, default="")
    cards = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    objects: ClassVar[models.Manager[Board]] = models.Manager()

    class Meta:
        db_table = "test_uow_boards"

    def __str__(self) -> str:
        return self.code


class Card(models.Model):
    """A child row: deleted with its board."""

    board = models.ForeignKey(Board, on_delete=models.CASCADE, related_name="+")
    code = models.CharField(max_length=20, unique=True)
    label = models.CharField(max_length=100)
    moves = models.IntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    objects: ClassVar[models.Manager[Card]] = models.Manager()

    class Meta:
        db_table = "test_uow_cards"

    def __str__(self) -> str:
        return self.code


class Plain(models.Model):
    """No unique key but its id (a lookup on ``name`` is refused)."""

    name = models.CharField(max_length=20)
    stamped_at = models.DateTimeField(auto_now_add=True)

    objects: ClassVar[models.Manager[Plain]] = models.Manager()

    class Meta:
        db_table = "test_uow_plain"

    def __str__(self) -> str:
        return self.name


class Guarded(models.Model):
    """A child its parent's delete may not cascade to (``on_delete=PROTECT``)."""

    board = models.ForeignKey(Board, on_delete=models.PROTECT, related_name="+")
    code = models.CharField(max_length=20, unique=True)

    objects: ClassVar[models.Manager[Guarded]] = models.Manager()

    class Meta:
        db_table = "test_uow_guarded"

    def __str__(self) -> str:
        return self.code


class PinnedBoard(Board):
    """Multi-table inheritance: refused by the unit of work."""

    pin = models.CharField(max_length=20, default="")

    objects: ClassVar[models.Manager[PinnedBoard]] = models.Manager()

    class Meta:
        db_table = "test_uow_pinned_boards"
