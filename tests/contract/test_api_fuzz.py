"""Schemathesis against the OpenAPI document the app serves (``/agent/openapi.json``).

Every operation, as four callers (no credentials, a revoked token, a token of a
user without ``reactions_admin.dismiss_event``, a token of a user with it), in
schemathesis's coverage and fuzzing phases (valid and invalid data): no 5xx, every
response conforms to the documented schema, and a refused request changes nothing
(bookmarks, events and API tokens are identical before and after it).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from eventstore.models import Event
from reactions_admin.acts.tokens.handler import issue_token, revoke_tokens
from subscribers.models import Bookmark
from tests.factories import append_events, operator, wedged_reaction
from tests.support import wait_until_visible

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20261126,  # reproducible in CI; change it locally to explore further
        "generation": {"mode": "all", "max-examples": 40},
        "phases": {"stateful": {"enabled": False}},
    }
)
schema = schemathesis.openapi.from_wsgi("/agent/openapi.json", WSGIHandler(), config=CONFIG)

#: Requests sent and responses by status, over the whole module (reported in the docs).
FIGURES: Counter[str] = Counter()
FIGURES_FILE = Path(__file__).resolve().parents[2] / ".data" / "figures" / "api-fuzz.json"

CALLERS = ["anonymous", "revoked", "unpermitted", "permitted"]


@dataclass
class World:
    headers: dict[str, dict[str, str]]
    event_ids: list[str]
    turn: int = 0


@pytest.fixture
def in_process_requests() -> Iterator[None]:
    """Requests go through Django's real WSGI handler inside the test's transaction: stop
    it closing the connection after each one, exactly as Django's own test client does."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def world(transactional_db: None, in_process_requests: None, settings: Any) -> World:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast users
    # Committed and visible: a dismissal only targets an event every reader already sees.
    events = wait_until_visible(
        append_events(4, data={"note": "<script>window.__xss = 1</script>"})
    )
    wedged_reaction("mailer", events[0], failing=events[1])
    Bookmark.objects.create(subscriber_name="read-model", kind=Bookmark.Kind.PROJECTION)
    revoked = issue_token(operator("retired")).secret
    revoke_tokens(prefix=revoked)
    return World(
        headers={
            "anonymous": {},
            "revoked": {"Authorization": f"Bearer {revoked}"},
            "unpermitted": {
                "Authorization": f"Bearer {issue_token(operator('intern', permitted=False)).secret}"
            },
            "permitted": {"Authorization": f"Bearer {issue_token(operator('robot')).secret}"},
        },
        event_ids=[str(event.event_id) for event in events],
    )


def state() -> tuple[Any, ...]:
    """Everything a request could change: bookmarks, events, tokens (live or revoked)."""
    from reactions_admin.models import ApiToken

    return (
        list(Bookmark.objects.order_by("pk").values()),
        list(Event.objects.order_by("position").values_list("event_id", flat=True)),
        list(ApiToken.objects.order_by("pk").values_list("pk", "revoked_at")),
    )


def aim(case: Any, world: World) -> None:
    """Point two requests in three at things that exist, so the fuzzer also reaches the
    200, 409 and 404-event branches. Only values of the same validity class are swapped
    (a name for a name, a UUID for a UUID), so a case stays valid or invalid as generated.
    Rotating rather than random keeps schemathesis's coverage phase usable (no @given)."""
    world.turn += 1
    if "name" in (case.path_parameters or {}) and world.turn % 3:
        case.path_parameters["name"] = ["mailer", "read-model"][world.turn % 3 - 1]
    body = case.body
    if isinstance(body, dict) and _is_uuid(body.get("event_id")) and world.turn % 4:
        body["event_id"] = world.event_ids[world.turn % len(world.event_ids)]


#: The refusals of a reason the schema's pattern states but the generator may not honour.
REASON_CODES = {"reason_required", "reason_too_long", "unstorable_text"}


def _code(response: Any) -> str:
    try:
        return str(response.json().get("code", ""))
    except ValueError:
        return ""


def _is_uuid(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


@pytest.mark.parametrize("caller", CALLERS)
@schema.parametrize()
# The fixtures are shared by an operation's examples on purpose: each request is judged
# by comparing the state just before and just after it, not against a fresh world.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
def test_the_api_survives_fuzzing(case, caller, world) -> None:
    aim(case, world)
    headers = world.headers[caller]
    before = state()
    response = case.call(headers=headers)
    FIGURES["requests"] += 1
    FIGURES[f"{response.status_code}"] += 1
    excluded = []
    if response.status_code == 400 and _code(response) in REASON_CODES:
        # The reason's pattern (a Unicode class of every visible character) is too large
        # for schemathesis's generator, which then drops it and calls any string "valid":
        # the handler's own refusal of a reason is the truth, and stays checked below.
        excluded.append(positive_data_acceptance)
    case.validate_response(response, headers=headers, excluded_checks=excluded)
    if not 200 <= response.status_code < 300:
        FIGURES["refused"] += 1
        assert state() == before, f"a refused request ({response.status_code}) changed state"
    elif caller in ("anonymous", "revoked") or (caller == "unpermitted" and case.method != "GET"):
        pytest.fail(f"{caller} got {response.status_code} from {case.method} {case.path}")


@pytest.fixture(scope="module", autouse=True)
def report_figures() -> Iterator[None]:
    """Leave the module's figures in .data/figures/api-fuzz.json (docs/reliability-access.md
    quotes them)."""
    yield
    FIGURES_FILE.parent.mkdir(parents=True, exist_ok=True)
    FIGURES_FILE.write_text(json.dumps(dict(sorted(FIGURES.items())), indent=2) + "\n")
