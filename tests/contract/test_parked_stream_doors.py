"""Parked streams through every door: REST, MCP (the SDK's client), the CLI, and the admin
(the real changelist and action URLs, then the confirmation page). Each door lists the
parked streams, dismisses a head, dismisses a whole stream, retries one, and shows the
handler's refusal codes."""

from __future__ import annotations

import io
import json
from typing import Any

import anyio
import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from mcp import Client as McpClient

from eventstore.postgres import PostgresEventStore
from reactions_admin.acts.parked_streams.handler import RETRY_STREAM
from reactions_admin.acts.tokens.handler import issue_token
from reactions_admin.doors.mcp.server import build_mcp_server
from reactions_admin.models import ParkedStream
from subscribers.leases import LeaseKeeper
from subscribers.registry import build_registry
from subscribers.stream_work import parked_streams, stream_rows
from subscribers.streams import take_in_and_claim
from tests.contract.conftest import ParkedWorld
from tests.factories import jobs, operator
from tests.support import decisions

pytestmark = pytest.mark.django_db(transaction=True)

NAME = "test.streams"
PARKED = reverse("admin:reactions_admin_parkedstream_changelist")
BOOKMARKS = reverse("admin:subscribers_bookmark_changelist")


def rest(method: str, path: str, secret: str, body: dict[str, Any] | None = None) -> Any:
    client = Client()
    headers: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    if method == "get":
        return client.get(f"/agent{path}", **headers)
    return client.post(
        f"/agent{path}", json.dumps(body or {}), content_type="application/json", **headers
    )


def act_on_bad(act: str, secret: str, body: dict[str, Any] | None = None) -> Any:
    """POST a parked-stream act (``dismiss``, ``dismiss-head``, ``retry``) on stream "bad"."""
    path = f"/reactions/{NAME}/parked-streams/{act}"
    return rest("post", path, secret, {"stream_id": "bad", **(body or {})})


@pytest.fixture
def ops_token() -> str:
    """A token of a user who may operate subscribers (retry) but not dismiss."""
    return issue_token(operator("ops", permitted=False, operates=True)).secret


# -- REST -----------------------------------------------------------------------------------------


def test_rest_lists_parked_streams_and_reports_the_reaction_degraded(
    parked: ParkedWorld, token: str
) -> None:
    response = rest("get", f"/reactions/{NAME}/parked-streams", token)
    assert response.status_code == 200, response.content
    [listed] = response.json()
    assert (listed["stream_id"], listed["event_id"], listed["waiting"], listed["attempts"]) == (
        "bad", str(parked.poison.event_id), 2, 2,
    )  # fmt: skip
    status = rest("get", f"/reactions/{NAME}", token).json()
    assert (status["ordering"], status["degraded"], status["parked_streams"]) == (
        "stream", True, 1,
    )  # fmt: skip
    assert status["lag"] == 0  # the parked stream is reported apart, not in the lag
    missing = rest("get", "/reactions/nobody/parked-streams", token)
    assert (missing.status_code, missing.json()["code"]) == (404, "reaction_not_found")


def test_rest_dismisses_the_head_then_the_stream(parked: ParkedWorld, token: str) -> None:
    head = act_on_bad("dismiss-head", token, {"reason": "poison"})
    assert head.status_code == 200, head.content
    assert (head.json()["event_id"], head.json()["ordering"]) == (str(parked.poison.event_id),
                                                                  "stream")  # fmt: skip
    # The stream is no longer parked (its next event is pending): a second act is refused.
    again = act_on_bad("dismiss", token, {"reason": "poison"})
    assert (again.status_code, again.json()["code"]) == (409, "stream_not_parked")
    assert len(decisions()) == 1


def test_rest_dismisses_a_whole_stream(parked: ParkedWorld, token: str) -> None:
    response = act_on_bad("dismiss", token, {"reason": "run abandoned"})
    assert response.status_code == 200, response.content
    assert response.json()["events_dismissed"] == 3
    assert [d["event_id"] for d in response.json()["dismissed"]] == [
        str(e.event_id) for e in [parked.poison, *parked.behind]
    ]
    assert [d.metadata["via"] for d in decisions()] == ["rest"] * 3
    assert stream_rows(NAME, "bad") == []


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("dismiss-event", {"event_id": "behind", "reason": "x"}, 409, "not_stream_head"),
        ("dismiss-event", {"event_id": "handled", "reason": "x"}, 409, "event_already_handled"),
        ("dismiss-event", {"event_id": "poison", "reason": " "}, 400, "reason_required"),
        ("parked-streams/dismiss", {"stream_id": "good", "reason": "x"}, 409,
         "stream_not_parked"),
        ("parked-streams/dismiss-head", {"stream_id": "good", "reason": "x"}, 409,
         "stream_not_parked"),
        ("parked-streams/retry", {"stream_id": "bad"}, 403, "permission_denied"),
    ],
)  # fmt: skip
def test_rest_refusals_carry_the_handlers_codes(
    parked: ParkedWorld, token: str, path: str, body: dict[str, Any], status: int, code: str
) -> None:
    events = {"behind": parked.behind[0], "handled": parked.handled, "poison": parked.poison}
    if "event_id" in body:
        body = {**body, "event_id": str(events[body["event_id"]].event_id)}
    response = rest("post", f"/reactions/{NAME}/{path}", token, body)
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert decisions() == []
    assert [p.stream_id for p in parked_streams(NAME)] == ["bad"]


def test_rest_retries_a_stream_with_the_operate_permission(
    parked: ParkedWorld, ops_token: str
) -> None:
    response = act_on_bad("retry", ops_token)
    assert response.status_code == 200, response.content
    assert (response.json()["event_id"], response.json()["attempts"]) == (
        str(parked.poison.event_id), 2,
    )  # fmt: skip
    assert parked_streams(NAME) == []
    [retry] = PostgresEventStore().read_stream(RETRY_STREAM)
    assert (retry.data["choice"], retry.metadata["via"]) == ("StreamRetried", "rest")


def test_the_openapi_document_lists_the_parked_stream_operations(token: str) -> None:
    paths = rest("get", "/openapi.json", token).json()["paths"]
    for path in ("parked-streams", "parked-streams/dismiss-head", "parked-streams/dismiss",
                 "parked-streams/retry"):  # fmt: skip
        assert f"/agent/reactions/{{name}}/{path}" in paths


# -- MCP ------------------------------------------------------------------------------------------


def mcp(token: str, tool: str, arguments: dict[str, Any]) -> Any:
    async def main() -> Any:
        async with McpClient(build_mcp_server(token=token)) as client:
            return await client.call_tool(tool, arguments)

    return anyio.run(main)


def test_mcp_lists_dismisses_and_retries_parked_streams(
    parked: ParkedWorld, token: str, ops_token: str
) -> None:
    listed = mcp(token, "list_parked_streams", {"subscriber_name": NAME})
    assert not listed.is_error, listed.content
    [stream] = listed.structured_content["parked_streams"]
    assert stream["event_id"] == str(parked.poison.event_id)
    refused = mcp(token, "retry_parked_stream", {"subscriber_name": NAME, "stream_id": "bad"})
    assert refused.is_error
    assert json.loads(refused.content[0].text)["code"] == "permission_denied"
    retried = mcp(ops_token, "retry_parked_stream", {"subscriber_name": NAME, "stream_id": "bad"})
    assert not retried.is_error, retried.content
    assert parked_streams(NAME) == []
    not_parked = mcp(
        token, "dismiss_parked_stream",
        {"subscriber_name": NAME, "stream_id": "bad", "reason": "x"},
    )  # fmt: skip
    assert json.loads(not_parked.content[0].text)["code"] == "stream_not_parked"


def test_mcp_dismisses_a_whole_stream_and_a_head(parked: ParkedWorld, token: str) -> None:
    head = mcp(
        token, "dismiss_event_in_reaction",
        {"subscriber_name": NAME, "event_id": str(parked.poison.event_id), "reason": "poison"},
    )  # fmt: skip
    assert not head.is_error, head.content
    assert head.structured_content["ordering"] == "stream"
    behind = mcp(
        token, "dismiss_event_in_reaction",
        {"subscriber_name": NAME, "event_id": str(parked.behind[1].event_id), "reason": "x"},
    )  # fmt: skip
    assert json.loads(behind.content[0].text)["code"] == "stream_not_parked"
    assert [d.metadata["via"] for d in decisions()] == ["mcp"]


# -- CLI ------------------------------------------------------------------------------------------


def cli(*args: str) -> str:
    out = io.StringIO()
    call_command("parked_streams", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_cli_lists_and_acts_on_parked_streams(parked: ParkedWorld) -> None:
    operator()
    operator("ops", permitted=False, operates=True)
    listing = cli(NAME, "--as", "operator")
    assert "1 parked stream(s)" in listing
    assert f"bad\thead {parked.poison.event_id}" in listing
    assert "2 waiting" in listing
    with pytest.raises(CommandError) as refused:
        cli(NAME, "--retry", "bad", "--as", "operator")
    assert refused.value.returncode == 3
    assert "permission_denied" in str(refused.value)
    assert "Retrying stream 'bad'" in cli(NAME, "--retry", "bad", "--as", "ops")
    with pytest.raises(CommandError, match="stream_not_parked"):
        cli(NAME, "--dismiss-stream", "bad", "--reason", "x", "--as", "operator")
    assert "no parked stream" in cli(NAME, "--as", "operator")


def test_cli_dismisses_the_head_and_the_whole_stream(parked: ParkedWorld) -> None:
    operator()
    with pytest.raises(CommandError, match="reason_required"):
        cli(NAME, "--dismiss-head", "bad", "--as", "operator")
    out = cli(NAME, "--dismiss-head", "bad", "--reason", "poison", "--as", "operator")
    assert f"Dismissed event {parked.poison.event_id}" in out
    assert [d.metadata["via"] for d in decisions()] == ["cli"]
    with pytest.raises(CommandError, match="reaction_not_found"):
        cli("nobody", "--as", "operator")


# -- admin ----------------------------------------------------------------------------------------


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def head_row() -> ParkedStream:
    row = ParkedStream.objects.get(subscriber_name=NAME, stream_id="bad")
    return row


def test_the_parked_streams_page_lists_each_stream_with_its_head_linked(
    parked: ParkedWorld,
) -> None:
    page = logged_in(operator()).get(PARKED).content.decode()
    event_page = reverse("admin:eventstore_event_change", args=[parked.poison.position])
    assert f'href="{event_page}"' in page
    assert "RuntimeError" in page
    for action in ("dismiss_heads", "dismiss_streams"):
        assert f'value="{action}"' in page
    assert 'value="retry_streams"' not in page  # needs operate_subscriber
    ops_page = logged_in(operator("ops", permitted=False, operates=True)).get(PARKED)
    assert 'value="retry_streams"' in ops_page.content.decode()


@pytest.mark.parametrize("action", ["dismiss_heads", "dismiss_streams"])
def test_the_admin_dismisses_after_a_confirmation_with_a_reason(
    parked: ParkedWorld, action: str
) -> None:
    client = logged_in(operator())
    selected = {"action": action, ACTION_CHECKBOX_NAME: [head_row().pk], "index": 0}
    confirm = client.post(PARKED, selected)
    assert confirm.status_code == 200
    assert 'name="reason"' in confirm.content.decode()
    assert decisions() == []  # nothing happens before the confirmation
    blank = client.post(PARKED, {**selected, "reason": "  ", "apply": "Dismiss"})
    assert "A reason is required" in blank.content.decode()
    assert decisions() == []
    done = client.post(PARKED, {**selected, "reason": "poison", "apply": "Dismiss"})
    assert done.status_code == 302
    shown = " ".join(str(m) for m in get_messages(done.wsgi_request))
    assert "Dismissed" in shown
    expected = 1 if action == "dismiss_heads" else 3
    assert [d.metadata["via"] for d in decisions()] == ["admin"] * expected
    remaining = [r.event_id for r in stream_rows(NAME, "bad")]
    assert remaining == ([e.event_id for e in parked.behind] if expected == 1 else [])


def test_the_admin_retries_a_stream_only_with_the_operate_permission(
    parked: ParkedWorld,
) -> None:
    selected = {"action": "retry_streams", ACTION_CHECKBOX_NAME: [head_row().pk], "index": 0}
    refused = logged_in(operator()).post(PARKED, {**selected, "apply": "Retry now"})
    assert refused.status_code == 302
    assert "No action selected" in " ".join(str(m) for m in get_messages(refused.wsgi_request))
    assert [p.stream_id for p in parked_streams(NAME)] == ["bad"]
    client = logged_in(operator("ops", permitted=False, operates=True))
    assert client.post(PARKED, selected).status_code == 200  # the confirmation page
    done = client.post(PARKED, {**selected, "reason": "", "apply": "Retry now"})
    assert "Retrying stream 'bad'" in " ".join(str(m) for m in get_messages(done.wsgi_request))
    assert parked_streams(NAME) == []


def test_the_bookmarks_page_shows_the_reaction_degraded(parked: ParkedWorld) -> None:
    page = logged_in(operator()).get(BOOKMARKS).content.decode()
    assert "Degraded" in page
    assert "1 parked stream" in page
    assert "oldest parked" in page
    assert "0 in flight" in page
    assert f"{PARKED}?subscriber_name__exact={NAME}" in page


def test_the_lag_counts_unfinished_rows_of_streams_not_parked(
    parked: ParkedWorld, token: str
) -> None:
    [entry] = build_registry(["tests.subscribers.StreamJobs"])
    jobs("pending", 2)
    jobs("later", 1)
    take_in_and_claim(entry, LeaseKeeper("elsewhere"), 0)  # intake only: 3 pending rows
    jobs("past-intake", 1)  # not taken in yet
    status = rest("get", f"/reactions/{NAME}", token).json()
    assert status["lag"] == 4  # 3 rows taken in and not finished + 1 past the intake point
    page = logged_in(operator()).get(BOOKMARKS).content.decode()
    assert '<td class="field-lag">4</td>' in page
