"""A token is revoked only by the audited act (``reactions_admin.acts.tokens.revoke``).

Found open (issue 18): setting ``revoked_at`` with a plain ``save()`` revoked a token with
no decision, and deleting a user deleted its tokens, unaudited. Now the database refuses
to commit a revocation without its ``TokenRevoked`` decision and to delete a live token,
whatever the path; deleting a user revokes its live tokens through the act first.

Committed transactions throughout (the revocation check runs at the commit).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.utils import timezone

from eventstore.postgres import PostgresEventStore
from reactions_admin.acts.tokens.handler import TOKEN_DECISION_STREAM, issue_token, revoke
from reactions_admin.errors import RevocationNotAudited
from reactions_admin.models import ApiToken
from tests.factories import operator

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def api_status(secret: str) -> int:
    return Client().get("/agent/reactions", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code


def revocations() -> list[dict[str, Any]]:
    return [
        {**event.data["inputs"], "via": event.metadata["via"]}
        for event in PostgresEventStore().read_stream(TOKEN_DECISION_STREAM)
        if event.data["choice"] == "TokenRevoked"
    ]


def test_a_plain_save_cannot_revoke_a_token() -> None:
    issued = issue_token(operator("robot"))
    token = ApiToken.objects.get(pk=issued.token.pk)
    token.revoked_at = timezone.now()
    with pytest.raises(RevocationNotAudited):
        token.save()
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None
    assert api_status(issued.secret) == 200  # still live: nothing half-done
    assert revocations() == []


def test_neither_can_an_update_nor_raw_sql_even_inside_a_transaction() -> None:
    issued = issue_token(operator("robot"))
    with pytest.raises(RevocationNotAudited):
        ApiToken.objects.filter(pk=issued.token.pk).update(revoked_at=timezone.now())
    # Inside a transaction the refusal comes at its commit: the whole transaction is lost.
    with (
        pytest.raises(IntegrityError, match="without its TokenRevoked decision"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "UPDATE reactions_admin_apitoken SET revoked_at = now() WHERE id = %s",
            [issued.token.pk],
        )
    assert ApiToken.objects.get(pk=issued.token.pk).revoked_at is None
    assert api_status(issued.secret) == 200


def test_the_act_revokes_and_audits_naming_the_token() -> None:
    issued = issue_token(operator("robot"))
    assert revoke(ApiToken.objects.filter(pk=issued.token.pk), via="code") == 1
    assert api_status(issued.secret) == 401
    [revoked] = revocations()
    assert revoked["token_id"] == issued.token.pk
    assert revoked["token_prefix"] == issued.token.prefix


def test_a_live_token_cannot_be_deleted_a_revoked_one_can() -> None:
    issued = issue_token(operator("robot"))
    with pytest.raises(RevocationNotAudited):
        ApiToken.objects.filter(pk=issued.token.pk).delete()
    assert api_status(issued.secret) == 200
    revoke(ApiToken.objects.filter(pk=issued.token.pk))
    ApiToken.objects.filter(pk=issued.token.pk).delete()
    assert not ApiToken.objects.filter(pk=issued.token.pk).exists()


def test_deleting_a_user_revokes_its_live_tokens_through_the_act() -> None:
    user = operator("leaver")
    live = [issue_token(user, "ci"), issue_token(user, "laptop")]
    already = issue_token(user, "old")
    revoke(ApiToken.objects.filter(pk=already.token.pk), via="admin")
    other = issue_token(operator("stayer"))

    User.objects.get(username="leaver").delete()

    assert not ApiToken.objects.filter(user_id=user.pk).exists()
    assert [api_status(issued.secret) for issued in live] == [401, 401]
    assert api_status(other.secret) == 200
    by_deletion = [r for r in revocations() if r["via"] == "user_deleted"]
    # One decision per live token, none again for the one already revoked.
    assert sorted(r["token_id"] for r in by_deletion) == sorted(i.token.pk for i in live)
    assert {r["token_owner"]["username"] for r in by_deletion} == {"leaver"}
