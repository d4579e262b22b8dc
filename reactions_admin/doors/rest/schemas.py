"""What the agent REST API's operations share: the shapes of a cursor and of every
refusal, the reason rule as a pattern, and the refusals each operation documents."""

from __future__ import annotations

from typing import Any

from ninja import Schema
from pydantic import Field

from reactions_admin.acts.reasons import MAX_REASON_LENGTH, visible_character_class


class CursorOut(Schema):
    transaction_id: int
    position: int


class RebuildProgressOut(Schema):
    """A projection's rebuild as its worker last recorded it."""

    projection: str
    phase: str = Field(
        description="copying_schema, building, indexing, catching_up, verifying, ready, "
        "paused, failed (open); swapped, cancelled, rolled_back (ended)"
    )
    phase_label: str
    events_done: int
    events_total: int
    events_remaining: int
    rate_events_per_second: float
    eta_seconds: float | None
    started_at: str
    started_by: str
    reason: str
    note: str = Field(description="What it waits for, in words (empty when nothing).")
    last_error: str
    kept_until: str | None = Field(description="Until when the swap's old tables are kept.")
    text: str = Field(description="The progress in one line, for people.")


class ErrorOut(Schema):
    """Every refusal: a stable ``code`` and a ``detail`` for people."""

    code: str
    detail: str


class ValidationErrorOut(ErrorOut):
    """A body or parameter of the wrong shape (422 ``validation_error``), with each problem."""

    errors: list[dict[str, Any]]


#: The decider's rule for a reason, stated for clients in the OpenAPI document: no NUL, at
#: least one visible character (a letter, number, punctuation or symbol by its Unicode
#: category: the class is built from the decider's own test), and after trimming whitespace
#: at most MAX_REASON_LENGTH characters (the lookahead refuses two non-space characters
#: MAX_REASON_LENGTH or more apart). It must read the same in Python's ``re`` and in a JSON
#: Schema validator's ECMA-262 dialect: astral characters stand as themselves (see
#: decider._escape), and lone surrogates, which no such validator can name, are left to the
#: handler (400 unstorable_text). The handler enforces the rule (400 reason_required /
#: reason_too_long / unstorable_text), not the schema parser, so each refusal keeps its code.
REASON_PATTERN: str = (
    rf"^(?!\s*\S[\s\S]{{{MAX_REASON_LENGTH - 1}}}[\s\S]*\S)"
    rf"[^\x00]*{visible_character_class()}[^\x00]*$"
)


class ReasonIn(Schema):
    reason: str = Field(
        description="Why you act (recorded in the audit trail). Trimmed; it must not be blank "
        "(400 reason_required) nor longer than 2000 characters (400 reason_too_long), nor "
        "hold a NUL character (400 unstorable_text).",
        min_length=1,
        json_schema_extra={"pattern": REASON_PATTERN},
    )


def refusals(*statuses: int) -> dict[int, Any]:
    """The error responses an operation can give, each documented with its body."""
    return {status: ValidationErrorOut if status == 422 else ErrorOut for status in statuses}


#: Every operation: no or bad credentials (401), CSRF or permission (403), database down (503).
ALWAYS = (401, 403, 503)
