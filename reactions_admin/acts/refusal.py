"""The value a decider returns to refuse an act: why (a member of the act's enum of
refusals, whose value is the stable error code) and words an operator reads. Pure: the
handler turns it into its error (``errors.from_rejection``)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Generic, TypeVar

E = TypeVar("E", bound=enum.Enum)


@dataclass(frozen=True)
class Rejected(Generic[E]):
    """The act must not happen: ``refusal`` says why, ``detail`` in words."""

    refusal: E
    detail: str

    @property
    def code(self) -> str:
        """The stable error code."""
        return str(self.refusal.value)
