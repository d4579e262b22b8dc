"""API tokens: revocation is final, and every token created or revoked is audited.

Found by a hostile reviewer: the admin left ``revoked_at`` editable, so clearing it
brought a revoked token back to life, and no audit event said a token had ever been
created or revoked. Now the admin shows ``revoked_at`` read-only, the database refuses
to clear or change it once set (whatever the path), and each act is a
``DecisionRegistered`` (context ``ApiToken``) appended in the transaction that writes
the token, naming the actor and the token's prefix, never its secret.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from eventstore.postgres import PostgresEventStore
from eventstore.types import RecordedEvent
from reactions_admin.acts.tokens.handler import TOKEN_DECISION_STREAM, issue_token, revoke_tokens
from reactions_admin.errors import RevocationFinal
from reactions_admin.models import ApiToken
from tests.factories import operator, wedged_mailer
from tests.support import dismissal_form, trigger_sql

pytestmark = pytest.mark.django_db

TOKENS = reverse("admin:reactions_admin_apitoken_changelist")
DECISIONS = reverse("admin:reactions_admin_decision_changelist")


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def token_decisions() -> list[RecordedEvent]:
    return PostgresEventStore().read_stream(TOKEN_DECISION_STREAM)


def api_status(secret: str) -> int:
    return Client().get("/agent/reactions", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code


def superuser_client(username: str = "root") -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser(username, password="pw-for-tests"))
    return client


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def assert_token_decision(
    decision: RecordedEvent, choice: str, token: ApiToken, secret: str, via: str
) -> None:
    assert decision.event_type == "DecisionRegistered"
    assert decision.data["context"] == "ApiToken"
    assert decision.data["choice"] == choice
    assert decision.data["inputs"]["token_prefix"] == token.prefix
    assert decision.data["inputs"]["token_owner"]["username"] == token.user.get_username()
    assert decision.metadata["via"] == via
    recorded = json.dumps([decision.data, decision.metadata])
    assert secret not in recorded
    assert secret[len(token.prefix) :] not in recorded
    assert token.digest not in recorded


# --- Revocation is final -------------------------------------------------------------


def revoked_token() -> tuple[ApiToken, str]:
    issued = issue_token(operator("robot"))
    assert revoke_tokens(prefix=issued.secret) == 1
    return ApiToken.objects.get(pk=issued.token.pk), issued.secret


def test_clearing_revoked_at_in_the_admin_change_form_does_not_revive_the_token() -> None:
    token, secret = revoked_token()
    revoked_at = token.revoked_at
    client = superuser_client()
    change = reverse("admin:reactions_admin_apitoken_change", args=[token.pk])
    page = client.get(change).content.decode()
    assert 'name="revoked_at' not in page  # shown, not editable
    response = client.post(
        change,
        {"name": "renamed", "revoked_at_0": "", "revoked_at_1": "", "_save": "Save"},
    )
    assert response.status_code == 302, response.content[:500]
    token.refresh_from_db()
    assert token.name == "renamed"  # the form did save: only revoked_at was left alone
    assert token.revoked_at == revoked_at
    assert api_status(secret) == 401


def test_the_admin_does_not_delete_tokens() -> None:
    token, _ = revoked_token()
    client = superuser_client()
    delete = reverse("admin:reactions_admin_apitoken_delete", args=[token.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert ApiToken.objects.filter(pk=token.pk).exists()


def test_the_model_refuses_to_clear_revoked_at() -> None:
    token, secret = revoked_token()
    revoked_at = token.revoked_at
    token.revoked_at = None
    with (
        pytest.raises(RevocationFinal, match="revocation is final") as refused,
        transaction.atomic(),
    ):
        token.save()
    assert refused.value.code == "revocation_final"
    assert ApiToken.objects.get(pk=token.pk).revoked_at == revoked_at
    assert api_status(secret) == 401


@pytest.mark.parametrize("new_value", [None, "later"], ids=["cleared", "moved"])
def test_a_queryset_update_cannot_clear_or_move_revoked_at(new_value) -> None:
    token, secret = revoked_token()
    assert token.revoked_at is not None
    value = token.revoked_at + timedelta(days=1) if new_value else None
    with pytest.raises(RevocationFinal), transaction.atomic():
        ApiToken.objects.filter(pk=token.pk).update(revoked_at=value)
    assert ApiToken.objects.get(pk=token.pk).revoked_at == token.revoked_at
    assert api_status(secret) == 401


def test_raw_sql_cannot_clear_revoked_at_either() -> None:
    token, secret = revoked_token()
    with (
        pytest.raises(IntegrityError, match="revocation is final"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "UPDATE reactions_admin_apitoken SET revoked_at = NULL WHERE id = %s", [token.pk]
        )
    assert ApiToken.objects.get(pk=token.pk).revoked_at == token.revoked_at
    assert api_status(secret) == 401


def test_a_live_token_can_still_be_renamed_used_and_revoked() -> None:
    issued = issue_token(operator("robot"))
    token = issued.token
    token.name = "ci"
    token.save()
    assert api_status(issued.secret) == 200  # updates last_used_at
    token.refresh_from_db()
    token.name = "ci runner"
    token.save()  # a revoked token may be renamed, too: only revoked_at is final
    assert revoke_tokens(prefix=token.prefix) == 1
    token.refresh_from_db()
    token.name = "retired ci runner"
    token.save()
    assert ApiToken.objects.get(pk=token.pk).name == "retired ci runner"
    assert api_status(issued.secret) == 401


# --- Every token created or revoked is a decision ---------------------------------------


def test_the_cli_audits_a_token_it_creates_and_one_it_revokes() -> None:
    operator("robot")
    secret = run("create_api_token", "robot", "--name", "ci").strip()
    token = ApiToken.objects.get()
    [created] = token_decisions()
    assert_token_decision(created, "TokenCreated", token, secret, via="cli")
    assert created.data["actor"]["username"] is None  # no --as: the OS account is named
    assert created.data["actor"]["os_user"]
    assert created.data["inputs"]["token_name"] == "ci"

    operator("alice")
    assert "Revoked 1" in run("revoke_api_token", token.prefix, "--as", "alice")
    [_, revoked] = token_decisions()
    assert_token_decision(revoked, "TokenRevoked", token, secret, via="cli")
    assert revoked.data["actor"]["username"] == "alice"
    assert api_status(secret) == 401


def test_revoking_every_token_of_a_user_audits_each_once() -> None:
    robot = operator("robot")
    issued = [issue_token(robot), issue_token(robot), issue_token(robot)]
    revoke_tokens(prefix=issued[0].secret)
    before = len(token_decisions())
    assert "Revoked 2" in run("revoke_api_token", "--user", "robot", "--all")
    revoked = token_decisions()[before:]
    assert sorted(d.data["inputs"]["token_prefix"] for d in revoked) == sorted(
        i.token.prefix for i in issued[1:]
    )
    assert {d.data["choice"] for d in revoked} == {"TokenRevoked"}
    assert len({d.metadata["correlation_id"] for d in revoked}) == 1  # one act
    with pytest.raises(CommandError, match="No live token"):
        run("revoke_api_token", "--user", "robot", "--all")
    assert len(token_decisions()) == before + 2  # revoking nothing records nothing


def test_an_unknown_acting_user_is_refused_and_nothing_is_written() -> None:
    operator("robot")
    with pytest.raises(CommandError, match="no active user"):
        run("create_api_token", "robot", "--as", "ghost")
    assert not ApiToken.objects.exists()
    assert token_decisions() == []


def test_the_admin_revoke_action_audits_who_revoked() -> None:
    issued = issue_token(operator("robot"))
    client = superuser_client("root")
    response = client.post(
        TOKENS, {"action": "revoke_selected", ACTION_CHECKBOX_NAME: [str(issued.token.pk)]}
    )
    assert response.status_code == 302
    assert api_status(issued.secret) == 401
    revoked = token_decisions()[-1]
    assert_token_decision(revoked, "TokenRevoked", issued.token, issued.secret, via="admin")
    assert revoked.data["actor"]["username"] == "root"


def test_the_admin_revoke_action_needs_the_change_permission() -> None:
    from django.contrib.auth.models import Permission

    issued = issue_token(operator("robot"))
    viewer = operator("viewer", permitted=False)
    viewer.user_permissions.add(Permission.objects.get(codename="view_apitoken"))
    client = Client()
    client.force_login(viewer)
    client.post(TOKENS, {"action": "revoke_selected", ACTION_CHECKBOX_NAME: [str(issued.token.pk)]})
    assert api_status(issued.secret) == 200
    assert [d.data["choice"] for d in token_decisions()] == ["TokenCreated"]


FAIL_TOKEN_DECISIONS = trigger_sql(
    "test_fail_token_decisions",
    "BEFORE INSERT ON events",
    f"IF NEW.stream_id = '{TOKEN_DECISION_STREAM}' THEN"
    " RAISE EXCEPTION 'token decision refused'; END IF;",
)


def test_no_token_changes_unless_its_decision_lands() -> None:
    robot = operator("robot")
    live = issue_token(robot)
    with connection.cursor() as cursor:  # rolled back with the test's transaction
        cursor.execute(FAIL_TOKEN_DECISIONS)
    with pytest.raises(DatabaseError, match="token decision refused"):
        issue_token(robot)
    with pytest.raises(DatabaseError, match="token decision refused"):
        revoke_tokens(prefix=live.secret)
    assert list(ApiToken.objects.values_list("prefix", flat=True)) == [live.token.prefix]
    assert api_status(live.secret) == 200
    assert len(token_decisions()) == 1


# --- The Decisions page ---------------------------------------------------------------


# Transactional: a dismissal only targets a committed event that every reader sees.
@pytest.mark.django_db(transaction=True)
def test_the_decisions_page_shows_and_filters_context_and_choice() -> None:
    events = wedged_mailer(3)
    client = superuser_client("root")
    client.post(
        reverse("admin:subscribers_bookmark_changelist"),
        dismissal_form("mailer", events[1].event_id, "poison"),
    )
    issued = issue_token(operator("robot"), actor=User.objects.get(username="root"))
    revoke_tokens(prefix=issued.secret)

    page = client.get(DECISIONS).content.decode()
    assert 'class="column-context"' in page
    assert 'class="column-choice"' in page
    for shown in ("ReactionDismissal", "EventDismissed", "ApiToken", "TokenCreated",
                  "TokenRevoked", issued.token.prefix):  # fmt: skip
        assert shown in page
    assert "?context=ApiToken" in page
    assert "?choice=TokenRevoked" in page
    assert issued.secret not in page

    tokens_only = results(client.get(DECISIONS, {"context": "ApiToken"}).content.decode())
    assert "TokenCreated" in tokens_only
    assert "EventDismissed" not in tokens_only
    revoked_only = results(client.get(DECISIONS, {"choice": "TokenRevoked"}).content.decode())
    assert "TokenRevoked" in revoked_only
    assert "TokenCreated" not in revoked_only


def results(page: str) -> str:
    """The changelist's table of results (not the filter sidebar, which lists every value)."""
    return page.split('id="result_list"')[1].split("</table>")[0]


def test_a_token_decision_detail_page_renders(settings: Any) -> None:
    issued = issue_token(operator("robot"))
    decision = token_decisions()[0]
    client = superuser_client()
    response = client.get(
        reverse("admin:reactions_admin_decision_change", args=[decision.position])
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert issued.token.prefix in page
    assert "TokenCreated" in page
    assert "None/None" not in page  # no cursors for a token decision
    assert issued.secret not in page


def test_revocation_timestamp_is_when_it_happened() -> None:
    issued = issue_token(operator("robot"))
    before = timezone.now()
    revoke_tokens(prefix=issued.token.prefix)
    revoked_at = ApiToken.objects.get(pk=issued.token.pk).revoked_at
    assert revoked_at is not None
    assert revoked_at >= before
