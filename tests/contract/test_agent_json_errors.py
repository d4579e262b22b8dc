"""Every answer under ``/agent/`` is JSON ``{"code", "detail"}``, whatever goes wrong: a
body over Django's upload limit (413, not a 500), a path no operation matches (404, not
Django's HTML page), a method an operation does not take (405).

Found by a hostile reviewer: a 10 MB reason gave ``500 internal_error``, and
``GET /agent/reactions/..%2F..%2Fadmin`` answered with Django's HTML 404 page.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
from django.conf import settings as django_settings
from django.test import Client

from eventstore.models import Event
from reactions_admin.acts.tokens.handler import issue_token
from subscribers.models import Bookmark
from tests.factories import append_events, operator, wedged_reaction
from tests.support import decisions, served_asgi

pytestmark = pytest.mark.django_db

#: The operations the OpenAPI document lists: a catch-all must not add any.
DOCUMENTED = {
    "/agent/reactions": {"get"},
    "/agent/reactions/{name}": {"get"},
    "/agent/reactions/{name}/dismiss-event": {"post"},
    "/agent/reactions/{name}/parked-streams": {"get"},
    "/agent/reactions/{name}/parked-streams/dismiss-head": {"post"},
    "/agent/reactions/{name}/parked-streams/dismiss": {"post"},
    "/agent/reactions/{name}/parked-streams/retry": {"post"},
    "/agent/subscribers": {"get"},
    "/agent/subscribers/{name}": {"get"},
    "/agent/subscribers/{name}/retry-now": {"post"},
    "/agent/subscribers/{name}/pause": {"post"},
    "/agent/subscribers/{name}/resume": {"post"},
    "/agent/workers": {"get"},
    "/agent/failures": {"get"},
    "/agent/failures/{fingerprint}": {"get"},
    "/agent/failures/{fingerprint}/dismiss": {"post"},
    "/agent/failures/{fingerprint}/retry": {"post"},
    "/agent/subscribers/{name}/rebuild": {"get", "post"},
    "/agent/subscribers/{name}/rebuild/swap": {"post"},
    "/agent/subscribers/{name}/rebuild/cancel": {"post"},
    "/agent/subscribers/{name}/rebuild/roll-back": {"post"},
    "/agent/subscribers/{name}/rebuild/pause": {"post"},
    "/agent/subscribers/{name}/rebuild/resume": {"post"},
    "/agent/subscribers/{name}/rebuild/retry": {"post"},
}


#: A CSRF secret, sent as both cookie and header: the check then reads the form body.
CSRF_SECRET = "k" * 32


@pytest.fixture
def world(settings: Any) -> dict[str, Any]:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    events = append_events(3)
    wedged_reaction("mailer", events[0], failing=events[1])
    return {"events": events, "token": issue_token(operator("robot")).secret}


def bearer(world: dict[str, Any]) -> dict[str, Any]:
    return {"HTTP_AUTHORIZATION": f"Bearer {world['token']}"}


def state() -> tuple[Any, ...]:
    return (
        list(Bookmark.objects.order_by("pk").values()),
        list(Event.objects.order_by("position").values_list("event_id", flat=True)),
    )


def assert_json_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) >= {"code", "detail"}, body
    assert body["code"] == code, body
    assert isinstance(body["detail"], str)
    assert body["detail"]


def oversize_reason() -> str:
    return "x" * (django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)


def test_a_10_mb_reason_is_413_and_changes_nothing(world) -> None:
    body = json.dumps({"event_id": str(world["events"][1].event_id), "reason": "x" * 10_000_000})
    before = state()
    response = Client().post(
        "/agent/reactions/mailer/dismiss-event", body, content_type="application/json",
        **bearer(world),
    )  # fmt: skip
    assert_json_error(response, 413, "request_too_large")
    assert str(django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE) in response.json()["detail"]
    assert state() == before
    assert decisions() == []


def test_an_oversize_form_body_with_a_session_is_413(world) -> None:
    """The session door reads the form body for its CSRF check, before ninja parses it."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator("alice"))
    client.cookies["csrftoken"] = CSRF_SECRET
    before = state()
    response = client.post(
        "/agent/reactions/mailer/dismiss-event",
        {"reason": oversize_reason()},
        HTTP_X_CSRFTOKEN=CSRF_SECRET,
    )
    assert_json_error(response, 413, "request_too_large")
    assert state() == before


@pytest.mark.django_db(transaction=True)  # the server answers from its own threads
def test_an_oversize_body_is_413_under_the_asgi_server(world) -> None:
    body = json.dumps({"event_id": str(world["events"][1].event_id), "reason": oversize_reason()})
    with served_asgi() as base_url:
        response = httpx2.post(
            f"{base_url}/agent/reactions/mailer/dismiss-event",
            content=body,
            headers={"Authorization": f"Bearer {world['token']}",
                     "Content-Type": "application/json"},
            timeout=30,
        )  # fmt: skip
    assert response.status_code == 413, response.text[:300]
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["code"] == "request_too_large"
    assert decisions() == []


@pytest.mark.parametrize(
    "path",
    [
        "/agent/reactions/..%2F..%2Fadmin",
        "/agent/reactions/../../admin/",
        "/agent/",
        "/agent",
        "/agent/nowhere",
        "/agent/reactions/",
        "/agent/reactions/mailer/",
        "/agent/reactions/mailer/dismiss-event/extra",
        "/agent/openapi.json/x",
    ],
)
@pytest.mark.parametrize("authenticated", [False, True], ids=["anonymous", "token"])
def test_an_unrouted_path_is_a_json_404(world, path, authenticated) -> None:
    headers: dict[str, Any] = bearer(world) if authenticated else {}
    # follow: "/agent" is redirected to "/agent/" (APPEND_SLASH), which is a 404.
    assert_json_error(Client().get(path, follow=True, **headers), 404, "not_found")


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_an_unrouted_path_is_a_json_404_for_writes_too(world, method) -> None:
    """Not Django's CSRF page (403 HTML) for an unsafe method either; and nothing changes."""
    before = state()
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator("alice"))
    response = getattr(client, method)(
        "/agent/reactions/..%2F..%2Fadmin", "{}", content_type="application/json"
    )
    assert_json_error(response, 404, "not_found")
    assert state() == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("delete", "/agent/reactions"),
        ("post", "/agent/reactions/mailer"),
        ("get", "/agent/reactions/mailer/dismiss-event"),
        ("put", "/agent/reactions/mailer/dismiss-event"),
    ],
)
def test_a_method_an_operation_does_not_take_is_a_json_405(world, method, path) -> None:
    before = state()
    response = getattr(Client(), method)(path, **bearer(world))
    assert_json_error(response, 405, "method_not_allowed")
    assert response["Allow"]
    assert state() == before


@pytest.mark.django_db(transaction=True)
def test_the_reviewers_curl_gets_json_from_the_asgi_server(world) -> None:
    with served_asgi() as base_url:
        response = httpx2.get(f"{base_url}/agent/reactions/..%2F..%2Fadmin", timeout=30)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["code"] == "not_found"


def test_the_openapi_document_lists_only_the_real_operations(world) -> None:
    document = Client().get("/agent/openapi.json").json()
    assert {path: set(ops) for path, ops in document["paths"].items()} == DOCUMENTED
    assert "413" in document["paths"]["/agent/reactions/{name}/dismiss-event"]["post"]["responses"]


def test_the_docs_page_is_still_html(world) -> None:
    response = Client().get("/agent/docs")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
