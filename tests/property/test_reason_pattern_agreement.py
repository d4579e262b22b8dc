"""The API schema's ``REASON_PATTERN`` and the decider agree on every reason: a reason the
schema calls valid is one the handler accepts, and the other way round (so schemathesis's
schema-valid requests are never refused with 400, nor its invalid ones accepted). They agree
in Python's ``re`` and in the JSON Schema validator schemathesis judges requests with
(``jsonschema_rs``, ECMA-262 dialect); a pattern that validator cannot compile makes
schemathesis fall back to its own reading of it, which diverged."""

from __future__ import annotations

import re

import jsonschema_rs
from hypothesis import example, given, settings
from hypothesis import strategies as st

from eventstore.types import Cursor
from reactions_admin.acts.dismissal.decider import (
    DismissalAccepted,
    decide_dismissal,
)
from reactions_admin.acts.reasons import MAX_REASON_LENGTH
from reactions_admin.doors.rest.schemas import REASON_PATTERN
from reactions_admin.guards import is_storable

PATTERN = re.compile(REASON_PATTERN)
VALIDATOR = jsonschema_rs.validator_for({"type": "string", "pattern": REASON_PATTERN})
INVISIBLE = (
    "\u200b\u200c\u200d\u2060\ufeff\u00ad\u0301\ufe0f\x07 \t\n\u3000\u00a0"
    # Letters by category that render as nothing (Hangul fillers), Braille's blank cell.
    "\u3164\u115f\u1160\uffa0\u2800"
)

reasons = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.sampled_from(INVISIBLE + "a."), max_size=30),
    st.tuples(
        st.text(alphabet=st.sampled_from(" \n\u200b"), max_size=4),
        st.integers(MAX_REASON_LENGTH - 2, MAX_REASON_LENGTH + 2),
        st.text(alphabet=st.sampled_from(" \n\u200b"), max_size=4),
    ).map(lambda parts: parts[0] + "x" * parts[1] + parts[2]),
)


def handler_accepts(reason: str) -> bool:
    decision = decide_dismissal(Cursor(1, 1), Cursor(2, 1), reason, visible=True)
    return isinstance(decision, DismissalAccepted) and is_storable(reason)


@settings(max_examples=300)
@given(reasons)
@example("\u200b")
@example("\u200bx")
@example("\u3164")
@example("\uffa0\u115f\u1160")
@example("\u3164x")
@example(" " + "y" * MAX_REASON_LENGTH + " ")
@example("y" * (MAX_REASON_LENGTH + 1))
@example("a\x00")
@example("\b\U000617e5")  # an unassigned astral code point: schemathesis found it
@example("\U0001f600")
@example("\U00020000")
def test_the_schema_pattern_and_the_decider_agree(reason: str) -> None:
    accepted = handler_accepts(reason)
    assert bool(PATTERN.search(reason)) == accepted, repr(reason[:40])
    assert VALIDATOR.is_valid(reason) == accepted, repr(reason[:40])


def test_a_lone_surrogate_the_schema_cannot_name_is_refused_by_the_handler() -> None:
    assert not handler_accepts("a\ud800")
