"""The JSON form of an act's result. A result is a frozen dataclass, and what every door
returns of it (the REST body, the MCP tool's structured content) is its fields, by name and
in their order, in JSON's terms. Pure: the deciders' results use it too."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


def as_json(value: Any) -> Any:
    """``value`` in JSON's terms: an id as its string, a cursor (a named tuple) as its
    parts by name, a mapping as a dict, a sequence as a list."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "_asdict"):
        return value._asdict()
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple | list):
        return [as_json(item) for item in value]
    return value


class FieldsPayload:
    """A result whose JSON form is its fields (see the module)."""

    def as_payload(self) -> dict[str, Any]:
        """The JSON form every door returns."""
        result = cast("DataclassInstance", self)
        return {field.name: as_json(getattr(self, field.name)) for field in fields(result)}
