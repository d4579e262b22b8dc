"""The API schema's ``REASON_PATTERN`` and the decider agree on every reason: a reason the
schema calls valid is one the handler accepts, and the other way round (so schemathesis's
schema-valid requests are never refused with 400, nor its invalid ones accepted)."""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from eventstore.types import Cursor
from reactions_admin.api import REASON_PATTERN
from reactions_admin.decider import MAX_REASON_LENGTH, DismissalAccepted, decide_dismissal
from reactions_admin.handler import is_storable

PATTERN = re.compile(REASON_PATTERN)
INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u0301\ufe0f\x07 \t\n\u3000\u00a0"

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
@example(" " + "y" * MAX_REASON_LENGTH + " ")
@example("y" * (MAX_REASON_LENGTH + 1))
@example("a\x00")
@example("a\ud800")
def test_the_schema_pattern_and_the_decider_agree(reason: str) -> None:
    assert bool(PATTERN.search(reason)) == handler_accepts(reason), repr(reason[:40])
