"""A parked-stream act on a reaction that keeps global order says so with its own code,
rather than claiming the stream is not parked."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from reactions_admin import errors
from reactions_admin.acts.parked_streams.handler import (
    dismiss_parked_stream,
    dismiss_stream_head,
    retry_parked_stream,
)
from subscribers.models import Bookmark
from tests.factories import append, operator, wedged_reaction
from tests.support import bookmark, decisions


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("act", ["retry", "dismiss-stream", "dismiss-head"])
def test_a_global_reaction_refuses_parked_stream_acts_with_its_own_code(act: str) -> None:
    failing = append("run-1", "Ping")[0]
    wedged_reaction("test.global", None, failing)
    user = operator(operates=True)
    acts: dict[str, Callable[[], object]] = {
        "retry": lambda: retry_parked_stream("test.global", "run-1", user, reason="try again"),
        "dismiss-stream": lambda: dismiss_parked_stream("test.global", "run-1", "poison", user),
        "dismiss-head": lambda: dismiss_stream_head("test.global", "run-1", "poison", user),
    }
    with pytest.raises(errors.NotStreamOrdered) as refused:
        acts[act]()
    assert refused.value.code == "reaction_not_stream_ordered"
    assert refused.value.status == 409
    assert bookmark("test.global").status == Bookmark.Status.WEDGED
    assert decisions() == []
