"""What a unit of work (``subscribers.rows.Rows``) holds of one model in a batch: its
rows by every unique key (the identity map), what the loads asked for, the rows as
loaded (to see what changed), the new and the deleted ones; and the refusals."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from django.db import models
from django.db.models.expressions import Expression
from django.db.models.lookups import Lookup

Key = tuple[str, ...]


class RowsRefused(Exception):
    """The unit of work cannot do this and stay equal to the plain ORM; the message says
    which model and why."""


class NoUniqueKey(RowsRefused):
    """A lookup on fields that are not a unique key of the model."""


class NotLoaded(RowsRefused):
    """A key that no ``rows.load`` covered: reading it would cost a query per event."""


class HeldModelQueried(RowsRefused):
    """An ORM query, inside ``apply_rows``, on a model whose rows the unit of work holds."""


class Unsupported(RowsRefused):
    """A model or a change the unit of work cannot write the way the ORM would."""


class AnyOf(Lookup):  # type: ignore[type-arg]
    """``column = ANY(%s)``: one statement shape for any number of keys."""

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        field = self.lhs.output_field
        values = [field.get_db_prep_value(value, connection) for value in self.rhs]
        return f"{lhs} = ANY(%s)", [*lhs_params, values]


class KeysIn(Expression):
    """``(a, b) IN (SELECT * FROM unnest(%s::ta[], %s::tb[]))``: a composite key matched
    exactly, in one statement shape for any number of keys."""

    conditional = True
    output_field = models.BooleanField()

    def __init__(self, columns: list[Any], values: list[list[Any]]) -> None:
        super().__init__()
        self.columns, self.values = columns, values

    def get_source_expressions(self) -> list[Any]:
        return list(self.columns)

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        self.columns = list(exprs)

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        names: list[str] = []
        params: list[Any] = []
        casts: list[str] = []
        arrays: list[Any] = []
        for column, values in zip(self.columns, self.values, strict=True):
            sql, column_params = compiler.compile(column)
            names.append(sql)
            params.extend(column_params)
            field = column.output_field
            casts.append(f"%s::{field.db_type(connection)}[]")
            arrays.append([field.get_db_prep_value(v, connection) for v in values])
        joined = ", ".join(names)
        return f"({joined}) IN (SELECT * FROM unnest({', '.join(casts)}))", [*params, *arrays]


def unique_keys(model: type[models.Model]) -> list[Key]:
    """The model's unique keys, each as its fields' attnames, sorted."""
    meta = model._meta
    keys: list[Key] = [(meta.pk.attname,)] if meta.pk is not None else []
    for field in meta.concrete_fields:
        if field.unique and not field.primary_key:
            keys.append((field.attname,))
    for together in meta.unique_together:
        keys.append(tuple(sorted(meta.get_field(name).attname for name in together)))  # type: ignore[union-attr]
    for constraint in meta.constraints:
        if (
            isinstance(constraint, models.UniqueConstraint)
            and constraint.fields
            and constraint.condition is None
            and not constraint.expressions
        ):
            keys.append(tuple(sorted(meta.get_field(n).attname for n in constraint.fields)))  # type: ignore[union-attr]
    return keys


class ModelRows:
    """What the unit of work holds of one model."""

    def __init__(self, model: type[models.Model]) -> None:
        meta = model._meta
        if meta.parents:
            raise Unsupported(
                f"{meta.label}: a multi-table-inherited model cannot be written in bulk;"
                " write it with apply()"
            )
        self.model = model
        self.keys = unique_keys(model)
        self.fields = {f.attname: f for f in meta.concrete_fields}
        for f in meta.concrete_fields:
            self.fields.setdefault(f.name, f)
        #: Unique key -> key values -> the live row (loaded or created).
        self.index: dict[Key, dict[tuple[Any, ...], models.Model]] = {k: {} for k in self.keys}
        #: Key values a load asked for, found or not, by the fields asked on.
        self.asked: dict[Key, set[tuple[Any, ...]]] = {}
        #: Key values ``assume_new`` took as missing without asking (never upserted).
        self.assumed: dict[Key, set[tuple[Any, ...]]] = {}
        self.loaded: dict[int, models.Model] = {}
        self.snapshots: dict[int, dict[str, Any]] = {}
        self.created: list[models.Model] = []
        self.deleted: dict[int, models.Model] = {}
        #: ``key_of``'s plan per lookup shape (the names, in the order given).
        self.plans: dict[tuple[str, ...], tuple[Key, list[tuple[int, Any]]]] = {}

    @property
    def label(self) -> str:
        return self.model._meta.label

    def key_of(self, lookup: Mapping[str, Any]) -> tuple[Key, tuple[Any, ...]]:
        """The lookup as (attnames sorted, values converted the way the column holds them)."""
        names = tuple(lookup)
        plan = self.plans.get(names)
        if plan is None:
            plan = self.plans[names] = self.plan(names)
        attnames, order = plan
        values = tuple(lookup.values())
        converted = []
        for index, field in order:
            value = values[index]
            if isinstance(value, models.Model):
                value = value.pk
            converted.append(clean(field, value))
        return attnames, tuple(converted)

    def plan(self, names: tuple[str, ...]) -> tuple[Key, list[tuple[int, Any]]]:
        """How ``key_of`` turns a lookup of these names (in this order) into a key: the
        attnames sorted, and for each the lookup's value to take and its field. Made once
        per batch, model and lookup shape: a batch calls ``key_of`` once per event."""
        found = []
        for index, name in enumerate(names):
            field = self.model._meta.pk if name == "pk" else self.fields.get(name)
            if field is None:
                raise RowsRefused(f"{self.label} has no field {name!r}")
            found.append((field.attname, index, field))
        found.sort(key=lambda item: item[0])
        return tuple(a for a, _, _ in found), [(i, f) for _, i, f in found]

    def unique_key(self, key: Key) -> Key:
        if key not in self.index:
            known = "; ".join(", ".join(k) for k in self.keys)
            raise NoUniqueKey(
                f"{self.label} has no unique key on ({', '.join(key)}): a lookup needs the"
                f" fields of its primary key, a unique field or a UniqueConstraint ({known})"
            )
        return key

    def values_of(self, obj: models.Model, key: Key) -> tuple[Any, ...] | None:
        values = tuple(getattr(obj, name) for name in key)
        return None if any(v is None for v in values) else values

    def hold(self, obj: models.Model) -> None:
        for key in self.keys:
            values = self.values_of(obj, key)
            if values is not None:
                self.index[key][values] = obj

    def drop(self, obj: models.Model) -> None:
        for key in self.keys:
            values = self.values_of(obj, key)
            if values is not None and self.index[key].get(values) is obj:
                del self.index[key][values]

    def live(self) -> Iterator[models.Model]:
        for obj in [*self.loaded.values(), *self.created]:
            if id(obj) not in self.deleted:
                yield obj


def clean(field: models.Field[Any, Any], value: Any) -> Any:
    return value if value is None else field.to_python(value)


def snapshot(obj: models.Model, fields: Iterable[models.Field[Any, Any]]) -> dict[str, Any]:
    values = {}
    for f in fields:
        value = getattr(obj, f.attname)
        values[f.attname] = copy.deepcopy(value) if isinstance(value, dict | list) else value
    return values


def refers_to(child: models.Model, field: Any, parent: models.Model) -> bool:
    cached = child._state.fields_cache.get(field.name)
    if cached is not None:
        return cached is parent
    target = getattr(parent, field.target_field.attname)
    return target is not None and getattr(child, field.attname) == target


def sync_foreign_keys(obj: models.Model) -> None:
    """A foreign key set to a row created in this batch gets that row's id (taken at flush)."""
    for field in obj._meta.concrete_fields:
        if field.is_relation and field.name in obj._state.fields_cache:
            related = obj._state.fields_cache[field.name]
            if related is not None and getattr(obj, field.attname) is None:
                setattr(obj, field.attname, getattr(related, field.target_field.attname))  # type: ignore[attr-defined]


def parents_first(held: list[ModelRows]) -> list[ModelRows]:
    """Models ordered so that a model comes after those its foreign keys point to."""
    order: list[ModelRows] = []
    by_model = {h.model: h for h in held}
    seen: set[type[models.Model]] = set()

    def visit(h: ModelRows) -> None:
        if h.model in seen:
            return
        seen.add(h.model)
        for field in h.model._meta.concrete_fields:
            target = field.related_model if field.is_relation else None
            if target in by_model and target is not h.model:
                visit(by_model[target])  # type: ignore[index]
        order.append(h)

    for h in held:
        visit(h)
    return order
