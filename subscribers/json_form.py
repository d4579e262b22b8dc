"""The JSON form of a reading value (a worker, a rebuild's progress, a diff, the counts):
the attributes it shows as they are, under their own names."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def attributes(value: object, *names: str) -> dict[str, Any]:
    """``{name: value.<name>}`` for each of ``names``, in that order."""
    return {name: getattr(value, name) for name in names}


def iso(moment: datetime | None) -> str | None:
    """A moment in ISO 8601, or None for none."""
    return moment.isoformat() if moment else None
