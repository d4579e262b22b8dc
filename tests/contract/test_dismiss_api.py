"""The REST door, through the real URLs: session auth (CSRF enforced) and bearer tokens."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.conf import settings
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client, override_settings

from reactions_admin.acts.tokens.handler import issue_token, revoke_tokens
from subscribers.models import Bookmark
from tests.factories import operator, wedged_mailer
from tests.support import decisions

# Transactional: a dismissal only targets an event every reader sees (committed, under
# the horizon); an event appended inside the test's own transaction never is.
pytestmark = pytest.mark.django_db(transaction=True)

URL = "/agent/reactions/mailer/dismiss-event"


@pytest.fixture
def events():
    events = wedged_mailer(4, data={"note": "<b>bold</b>"})
    Bookmark.objects.create(subscriber_name="read-model", kind=Bookmark.Kind.PROJECTION)
    return events


def bearer(secret: str) -> dict[str, Any]:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def post(client: Client, body: object, url: str = URL, **headers: Any):
    payload = body if isinstance(body, str) else json.dumps(body)
    return client.post(url, payload, content_type="application/json", **headers)


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["detail"], str)
    assert body["detail"]


def session_client(
    username: str = "operator", *, permitted: bool = True, csrf: bool = True
) -> tuple[Client, dict[str, str]]:
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator(username, permitted=permitted))
    if not csrf:
        return client, {}
    secret = _get_new_csrf_string()
    client.cookies[settings.CSRF_COOKIE_NAME] = secret
    return client, {"HTTP_X_CSRFTOKEN": secret}


def test_session_with_csrf_dismisses(events) -> None:
    client, csrf = session_client()
    response = post(client, {"event_id": str(events[1].event_id), "reason": "poison"}, **csrf)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["event_id"] == str(events[1].event_id)
    assert body["cursor_before"] == events[0].cursor._asdict()
    assert body["cursor_after"] == events[1].cursor._asdict()
    [decision] = decisions()
    assert body["decision_event_id"] == str(decision.event_id)
    assert decision.metadata["via"] == "rest"
    assert Bookmark.objects.get(pk="mailer").cursor == events[1].cursor


def test_session_without_csrf_is_403(events) -> None:
    client, _ = session_client(csrf=False)
    response = post(client, {"event_id": str(events[1].event_id), "reason": "poison"})
    assert_error(response, 403, "csrf_failed")
    assert decisions() == []


def test_no_credentials_is_401(events) -> None:
    response = post(
        Client(enforce_csrf_checks=True), {"event_id": str(events[1].event_id), "reason": "x"}
    )
    assert_error(response, 401, "not_authenticated")


def test_a_token_dismisses_without_csrf(events, token) -> None:
    client = Client(enforce_csrf_checks=True)
    response = post(
        client, {"event_id": str(events[2].event_id), "reason": "poison"}, **bearer(token)
    )
    assert response.status_code == 200, response.content
    assert decisions()[0].data["actor"]["username"] == "robot"


@pytest.mark.parametrize("secret", ["edk_not-a-real-token", "garbage", ""])
def test_an_unknown_token_is_401(events, secret) -> None:
    response = post(
        Client(), {"event_id": str(events[1].event_id), "reason": "x"}, **bearer(secret)
    )
    assert_error(response, 401, "not_authenticated")


def test_a_revoked_token_is_401(events, token) -> None:
    revoke_tokens(prefix=token)
    response = post(Client(), {"event_id": str(events[1].event_id), "reason": "x"}, **bearer(token))
    assert_error(response, 401, "not_authenticated")
    assert decisions() == []


def test_a_user_without_the_permission_is_403(events) -> None:
    secret = issue_token(operator("intern", permitted=False)).secret
    response = post(
        Client(), {"event_id": str(events[1].event_id), "reason": "x"}, **bearer(secret)
    )
    assert_error(response, 403, "permission_denied")
    client, csrf = session_client("intern2", permitted=False)
    response = post(client, {"event_id": str(events[1].event_id), "reason": "x"}, **csrf)
    assert_error(response, 403, "permission_denied")
    assert decisions() == []


@pytest.mark.parametrize(
    ("url", "which", "reason", "status", "code"),
    [
        ("/agent/reactions/nobody/dismiss-event", 1, "x", 404, "reaction_not_found"),
        ("/agent/reactions/read-model/dismiss-event", 1, "x", 404, "reaction_not_found"),
        (URL, None, "x", 404, "event_not_found"),
        (URL, 1, " \n ", 400, "reason_required"),
        (URL, 1, "x" * 2001, 400, "reason_too_long"),
        (URL, 0, "rewind", 409, "rewind_refused"),
    ],
)
def test_refusals_through_the_url(events, token, url, which, reason, status, code) -> None:
    event_id = str(uuid.uuid4()) if which is None else str(events[which].event_id)
    response = post(Client(), {"event_id": event_id, "reason": reason}, url=url, **bearer(token))
    assert_error(response, status, code)
    assert decisions() == []


@override_settings(EVENTDESK={"event_store": "memory"})
def test_the_in_memory_store_is_503(token) -> None:
    response = post(Client(), {"event_id": str(uuid.uuid4()), "reason": "x"}, **bearer(token))
    assert_error(response, 503, "event_store_not_durable")


def test_malformed_json_is_400(events, token) -> None:
    response = post(Client(), '{"event_id": ', **bearer(token))
    assert_error(response, 400, "malformed_request")


@pytest.mark.parametrize(
    "body",
    [
        {"event_id": "not-a-uuid", "reason": "x"},
        {"event_id": 12, "reason": "x"},
        {"reason": "x"},
        {"event_id": str(uuid.uuid4())},
        {"event_id": str(uuid.uuid4()), "reason": ["a list"]},
        ["not", "an", "object"],
    ],
)
def test_wrong_shapes_are_422_with_a_code(events, token, body) -> None:
    response = post(Client(), body, **bearer(token))
    assert_error(response, 422, "validation_error")
    assert decisions() == []


def test_a_422_names_the_field_as_sent_in_the_body(events, token) -> None:
    # ninja's own location adds the view's body parameter: "body.body.reason".
    response = post(Client(), {"event_id": str(uuid.uuid4())}, **bearer(token))
    assert_error(response, 422, "validation_error")
    body = response.json()
    assert body["detail"] == "Invalid request: body.reason: Field required", body
    assert [error["loc"] for error in body["errors"]] == [["body", "reason"]]


def test_html_in_the_reason_is_stored_as_text(events, token) -> None:
    reason = '<script>alert("x")</script> & <b>bold</b>'
    response = post(
        Client(), {"event_id": str(events[1].event_id), "reason": reason}, **bearer(token)
    )
    assert response.status_code == 200
    assert decisions()[0].data["reason"] == reason


def test_list_and_get_reactions(events, token) -> None:
    listing = Client().get("/agent/reactions", **bearer(token))
    assert listing.status_code == 200
    [mailer] = listing.json()
    assert mailer["name"] == "mailer"
    assert mailer["status"] == "wedged"
    assert mailer["failing_event_id"] == str(events[1].event_id)
    assert mailer["last_error"] == "ValueError: poison"
    assert mailer["cursor"] == events[0].cursor._asdict()
    assert isinstance(mailer["lag"], int)
    one = Client().get("/agent/reactions/mailer", **bearer(token))
    assert one.status_code == 200
    assert one.json() == mailer


def test_reads_refuse_unknown_names_and_anonymous_callers(events, token) -> None:
    assert_error(
        Client().get("/agent/reactions/read-model", **bearer(token)), 404, "reaction_not_found"
    )
    assert_error(Client().get("/agent/reactions"), 401, "not_authenticated")


def test_a_session_may_read_without_csrf(events) -> None:
    client, _ = session_client(csrf=False)
    assert client.get("/agent/reactions").status_code == 200


def test_openapi_docs_are_served() -> None:
    assert Client().get("/agent/docs").status_code == 200
    schema = Client().get("/agent/openapi.json").json()
    assert "/agent/reactions/{name}/dismiss-event" in schema["paths"]
