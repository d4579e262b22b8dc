"""A token's ``last_used_at`` is kept fresh to the minute, not written on every request
(a Prometheus scrape every few seconds would otherwise write on every read)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User

from reactions_admin.acts.tokens.handler import LAST_USED_RESOLUTION, issue_token, user_for_token
from reactions_admin.models import ApiToken


@pytest.mark.django_db
def test_last_used_is_written_once_a_minute_at_most() -> None:
    user = User.objects.create_user("scraper")
    issued = issue_token(user, name="prometheus")
    assert user_for_token(issued.secret) == user
    first = ApiToken.objects.get(pk=issued.token.pk).last_used_at
    assert first is not None

    assert user_for_token(issued.secret) == user
    assert ApiToken.objects.get(pk=issued.token.pk).last_used_at == first

    stale = first - LAST_USED_RESOLUTION - timedelta(seconds=1)
    ApiToken.objects.filter(pk=issued.token.pk).update(last_used_at=stale)
    assert user_for_token(issued.secret) == user
    refreshed = ApiToken.objects.get(pk=issued.token.pk).last_used_at
    assert refreshed is not None
    assert refreshed > stale
