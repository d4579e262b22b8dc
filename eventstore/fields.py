"""``xid8``: PostgreSQL's 64-bit transaction id, which Django has no field for."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.expressions import Expression


class Xid8Field(models.Field):  # type: ignore[type-arg]
    """A ``xid8`` column, read as a Python int.

    psycopg returns ``xid8`` as text; this field converts it. Values are sent as
    text and cast by PostgreSQL (there is no bigint → xid8 cast).
    """

    description = "PostgreSQL 64-bit transaction id (xid8)"

    def db_type(self, connection: BaseDatabaseWrapper) -> str:
        return "xid8"

    def from_db_value(
        self, value: Any, expression: Expression, connection: BaseDatabaseWrapper
    ) -> int | None:
        return None if value is None else int(value)

    def to_python(self, value: Any) -> int | None:
        return None if value is None else int(value)

    def get_prep_value(self, value: Any) -> Any:
        return None if value is None else str(int(value))

    def get_placeholder(self, value: Any, compiler: Any, connection: Any) -> str:
        return "%s::xid8"
