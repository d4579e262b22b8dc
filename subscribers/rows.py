"""The unit of work a projection's ``apply_rows(events, rows)`` writes through.

A projection that defines ``apply_rows`` gets a ``Rows`` per batch. It loads the rows the
batch needs once (``rows.load``: one ``= ANY(...)`` query per model and key), changes them
in memory with plain attribute writes, creates (``rows.new``, ``rows.get_or_new``) and
deletes (``rows.delete``) them, and never calls ``save()``. The worker then flushes: each
row is written once, in its final state, in a few set-based statements per model, in the
transaction that moves the bookmark. The tables equal those the same logic leaves with
plain per-event ORM calls (a differential property test holds it to that):

* surrogate ids: new rows take their ids from the model's sequence in creation order,
  rows created and deleted in one batch included (they use up their id, as they would);
* ``auto_now`` / ``auto_now_add`` and defaults: as ``save()`` and ``create()`` set them;
* ``on_delete``: a deleted row's children held in memory follow it (CASCADE, SET_NULL);
  those in the database are deleted by Django's own collector (``QuerySet.delete()``).

What it refuses, with a ``RowsRefused`` naming the model and the case (never a silent
difference): a lookup on fields that are not a unique key; a key that no ``load`` covered
(rather than one query per event); an ORM query through the ordinary managers, inside
``apply_rows``, on a model whose rows it holds (it would read stale rows: read through
``rows`` instead); a load after a delete; a loaded row whose primary key was changed; a
multi-table-inherited model; a delete that PROTECT/RESTRICT or SET_DEFAULT would govern.

Django's ``pre_save``/``post_save`` signals do not fire (as with ``bulk_create``); deletes
go through ``QuerySet.delete()``, which sends the delete signals it always sends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from django.db import IntegrityError, connection, models
from django.db.models.deletion import get_candidate_relations_to_delete

from subscribers.row_map import (
    AnyOf,
    HeldModelQueried,
    KeysIn,
    ModelRows,
    NotLoaded,
    NoUniqueKey,
    RowsRefused,
    Unsupported,
    parents_first,
    refers_to,
    snapshot,
    sync_foreign_keys,
)

__all__ = [
    "HeldModelQueried",
    "NoUniqueKey",
    "NotLoaded",
    "Rows",
    "RowsRefused",
    "Unsupported",
]

M = TypeVar("M", bound=models.Model)


class Rows:
    """A batch's rows, loaded once, changed in memory, written once (the unit of work).

    Load before the loop, then read and write through it::

        def apply_rows(self, events, rows):
            rows.load(Run, run_id={e.data["run_id"] for e in events})
            for e in events:
                run = rows.get_or_new(Run, run_id=e.data["run_id"])
                run.steps += 1

    No ``save()``: the worker flushes once, in the bookmark's transaction.
    """

    def __init__(self) -> None:
        self._held: dict[type[models.Model], ModelRows] = {}
        self._tables: dict[str, str] = {}
        self._guarding = False
        self._any_delete = False

    # --- reading -------------------------------------------------------------------------

    def load(
        self,
        model: type[M],
        fields: Iterable[str] | None = None,
        keys: Iterable[Iterable[Any]] | None = None,
        /,
        **field_values: Iterable[Any],
    ) -> None:
        """Load the rows of ``model`` whose key is among the given ones, in one query.

        One field: ``rows.load(Run, run_id=ids)``. Several fields (a composite unique key):
        ``rows.load(TypeCount, ("projection", "event_type"), pairs)``. A row already held
        keeps its in-memory state. A key asked for and not found is known to be missing, so
        ``get`` answers None and ``get_or_new`` creates it, with no further query.
        """
        held = self._rows(model)
        if self._any_delete:
            raise RowsRefused(
                f"{held.label}: rows.load after rows.delete would read rows the delete's"
                " cascade has not removed yet; load every row before the first delete"
            )
        key_pairs = self._keys(held, "load", fields, keys, field_values)
        if not key_pairs:
            return
        key = key_pairs[0][0]
        asked = {values for _, values in key_pairs}
        table = held.model._meta.db_table
        columns = [held.fields[name].get_col(table) for name in key]
        ordered = sorted(asked, key=str)
        if len(key) == 1:
            condition: Any = AnyOf(columns[0], [k[0] for k in ordered])
        else:
            condition = KeysIn(columns, [[k[i] for k in ordered] for i in range(len(key))])
        with self._unguarded():
            found = list(held.model._base_manager.filter(condition))
        for obj in found:
            if (obj.pk,) in held.index[held.keys[0]]:
                continue  # held already: the in-memory row is the newer one
            held.loaded[id(obj)] = obj
            held.snapshots[id(obj)] = snapshot(obj, held.model._meta.concrete_fields)
            held.hold(obj)
        held.asked.setdefault(key, set()).update(asked)

    def assume_new(
        self,
        model: type[M],
        fields: Iterable[str] | None = None,
        keys: Iterable[Iterable[Any]] | None = None,
        /,
        **field_values: Iterable[Any],
    ) -> None:
        """Keys the projection knows have no row yet (a stream's first event, say): taken
        as missing with no query, so ``get`` answers None and ``get_or_new`` creates the
        row; the same arguments as ``load``.

        Nothing is overwritten on the strength of it: such a row is written by a plain
        ``INSERT``, which fails (an ``IntegrityError``, as ``create`` would) if a row with
        the key exists after all.
        """
        held = self._rows(model)
        for key, values in self._keys(held, "assume_new", fields, keys, field_values):
            held.unique_key(key)
            if values in held.index[key]:
                raise RowsRefused(
                    f"{held.label}: rows.assume_new of {', '.join(key)} = {values!r}, a key"
                    " whose row this batch holds"
                )
            held.assumed.setdefault(key, set()).add(values)

    def _keys(
        self,
        held: ModelRows,
        method: str,
        fields: Iterable[str] | None,
        keys: Iterable[Iterable[Any]] | None,
        field_values: Mapping[str, Iterable[Any]],
    ) -> list[tuple[tuple[str, ...], tuple[Any, ...]]]:
        """``load``'s and ``assume_new``'s arguments as (key fields, key values) pairs."""
        if fields is not None:
            names = list(fields)
            wanted = [tuple(k) for k in (keys or ())]
        else:
            if len(field_values) != 1:
                raise RowsRefused(
                    f"{held.label}: rows.{method} takes one field=values, or (fields, keys)"
                )
            (name, values) = next(iter(field_values.items()))
            names, wanted = [name], [(v,) for v in values]
        return [held.key_of(dict(zip(names, k, strict=True))) for k in wanted]

    def get(self, model: type[M], **key: Any) -> M | None:
        """The row of ``model`` with this unique key (as this batch has left it), or None.

        The key must have been loaded (or the row created in this batch): otherwise
        ``NotLoaded``, never a query per event.
        """
        held = self._rows(model)
        names, values = held.key_of(key)
        held.unique_key(names)
        found = held.index[names].get(values)
        if found is not None:
            return found  # type: ignore[return-value]
        if values in held.asked.get(names, ()) or values in held.assumed.get(names, ()):
            return None
        shown = ", ".join(f"{n}={v!r}" for n, v in zip(names, values, strict=True))
        raise NotLoaded(
            f"{held.label} with {shown}"
            f" was not loaded: call rows.load({model.__name__}, ...) with this key before"
            " the loop (one query per batch, not one per event)"
        )

    def get_or_new(
        self, model: type[M], defaults: Mapping[str, Any] | None = None, **key: Any
    ) -> M:
        """The row with this unique key, or a new one (key and ``defaults`` set, the model's
        defaults for the rest), as ``get_or_create`` would give."""
        found = self.get(model, **key)
        if found is not None:
            return found
        return self.new(model, **key, **(defaults or {}))

    # --- writing -------------------------------------------------------------------------

    def new(self, model: type[M], **fields: Any) -> M:
        """A new row, as ``Model.objects.create(**fields)`` would insert it (at flush)."""
        held = self._rows(model)
        obj = model(**fields)
        for key in held.keys:
            values = held.values_of(obj, key)
            if values is not None and values in held.index[key]:
                raise IntegrityError(
                    f"{held.label}: a row with {', '.join(key)} = {values!r} exists already"
                )
        held.created.append(obj)
        held.hold(obj)
        return obj

    def delete(self, obj: models.Model) -> None:
        """Delete a row this unit of work holds, with its ``on_delete`` cascades."""
        held = self._rows(type(obj))
        if id(obj) not in held.loaded and all(o is not obj for o in held.created):
            raise RowsRefused(f"{held.label}: rows.delete of a row that rows did not give")
        if id(obj) in held.deleted:
            return
        self._any_delete = True
        held.deleted[id(obj)] = obj
        held.drop(obj)
        self._follow_delete(obj)

    def _follow_delete(self, obj: models.Model) -> None:
        """What Django's collector does to the children this unit of work holds."""
        # The relations Django's collector follows (related_name="+" ones too).
        relation: Any
        for relation in get_candidate_relations_to_delete(obj._meta):
            field = relation.field
            if relation.related_model not in self._held:
                continue
            child_rows = self._held[relation.related_model]
            for child in list(child_rows.live()):
                if not refers_to(child, field, obj):
                    continue
                rule = field.remote_field.on_delete
                if rule is models.CASCADE:
                    self.delete(child)
                elif rule is models.SET_NULL:
                    setattr(child, field.name, None)
                elif rule is not models.DO_NOTHING:
                    raise Unsupported(
                        f"{child_rows.label}.{field.name}: a delete of {obj._meta.label} with"
                        f" on_delete={getattr(rule, '__name__', rule)} and the child held in"
                        " this batch; write it with apply()"
                    )

    # --- the worker's side -----------------------------------------------------------------

    @contextmanager
    def guard(self) -> Iterator[None]:
        """While open, an ORM query on a model whose rows this holds is refused."""
        with connection.execute_wrapper(self._check_query):
            self._guarding = True
            try:
                yield
            finally:
                self._guarding = False

    def flush(self) -> None:
        """Write every held change once: deletes of loaded rows, then per model (parents
        first) one statement for its new and changed rows (ids of new rows taken from the
        sequence in creation order)."""
        with self._unguarded():
            for held in self._held.values():
                gone = [o.pk for o in held.deleted.values() if id(o) in held.loaded]
                if gone:
                    held.model._base_manager.filter(pk__in=gone).delete()
            for held in parents_first(list(self._held.values())):
                self._write(held)

    def _write(self, held: ModelRows) -> None:
        """One upsert of the changed loaded rows and of the new rows whose key is known to
        be free (an id from the sequence, or a primary key a load found missing); a plain
        insert of any other new row (it fails, as ``create`` would, if the key is taken)."""
        manager = held.model._base_manager
        changed, fields = self._changed(held)
        if not changed and self._only_new_with_ids_to_take(held):
            # Only new rows, each to get an id from the sequence, none deleted: one INSERT
            # whose RETURNING gives the ids, in creation order (as ``create`` would take them).
            manager.bulk_create(held.created)
            return
        reserved = self._take_ids(held)
        pk_key = held.keys[0]
        missing = held.asked.get(pk_key, set())
        free: list[models.Model] = []
        unsure: list[models.Model] = []
        for obj in held.created:
            if id(obj) not in held.deleted:
                known = id(obj) in reserved or (obj.pk,) in missing
                (free if known else unsure).append(obj)
        if unsure:
            manager.bulk_create(unsure)
        if changed:
            manager.bulk_create(
                [*free, *changed],
                update_conflicts=True,
                unique_fields=[held.model._meta.pk.name],
                update_fields=fields,
            )
        elif free:
            manager.bulk_create(free)

    def _only_new_with_ids_to_take(self, held: ModelRows) -> bool:
        """Whether ``held``'s only writes are new rows of an auto-increment primary key,
        every one without an id yet and none deleted in this batch."""
        pk = held.model._meta.pk
        if not held.created or not isinstance(pk, models.AutoField | models.BigAutoField):
            return False
        return all(o.pk is None and id(o) not in held.deleted for o in held.created)

    def _take_ids(self, held: ModelRows) -> set[int]:
        """Ids from the sequence, one per created row in creation order (those created and
        deleted in this batch too: the ORM would have used theirs up); returns the rows
        (by ``id()``) that got one."""
        pk = held.model._meta.pk
        if pk is None or not isinstance(pk, models.AutoField | models.BigAutoField):
            return set()
        waiting = [o for o in held.created if o.pk is None]
        if not waiting:
            return set()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s) n"
                " ORDER BY n",
                [connection.ops.quote_name(held.model._meta.db_table), pk.column, len(waiting)],
            )
            for obj, (value,) in zip(waiting, cursor.fetchall(), strict=True):
                obj.pk = value
        return {id(obj) for obj in waiting}

    def _changed(self, held: ModelRows) -> tuple[list[models.Model], list[str]]:
        """The loaded rows that changed, and the fields an upsert must set for them."""
        meta = held.model._meta
        changed: list[models.Model] = []
        names: set[str] = set()
        for key, obj in held.loaded.items():
            if key in held.deleted:
                continue
            before = held.snapshots[key]
            if obj.pk != before[meta.pk.attname]:
                raise Unsupported(
                    f"{held.label}: the primary key of a loaded row changed"
                    f" ({before[meta.pk.attname]!r} -> {obj.pk!r}); delete it and create"
                    " another instead"
                )
            sync_foreign_keys(obj)
            diff = {n for n, v in before.items() if getattr(obj, n) != v}
            stamped = [n for n in diff if getattr(held.fields[n], "auto_now_add", False)]
            if stamped:
                raise Unsupported(
                    f"{held.label}.{stamped[0]}: an auto_now_add field of a loaded row was"
                    " changed; a bulk write would stamp it again; write it with apply()"
                )
            if diff:
                changed.append(obj)
                names |= diff
        fields = [
            f.name
            for f in meta.concrete_fields
            if not f.primary_key
            and not getattr(f, "auto_now_add", False)
            and (f.attname in names or getattr(f, "auto_now", False))
        ]
        return changed, fields

    # --- internals -----------------------------------------------------------------------

    def _rows(self, model: type[models.Model]) -> ModelRows:
        held = self._held.get(model)
        if held is None:
            held = self._held[model] = ModelRows(model)
            self._tables[connection.ops.quote_name(model._meta.db_table)] = model._meta.label
        return held

    def _check_query(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        if self._guarding:
            for table, label in self._tables.items():
                if table in sql:
                    raise HeldModelQueried(
                        f"{label} was queried through the ORM inside apply_rows while the"
                        " unit of work holds its rows (it would read them as they were"
                        " before this batch): read them through rows.get / rows.load"
                    )
        return execute(sql, params, many, context)

    @contextmanager
    def _unguarded(self) -> Iterator[None]:
        guarding, self._guarding = self._guarding, False
        try:
            yield
        finally:
            self._guarding = guarding
