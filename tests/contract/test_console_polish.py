"""The console's pages agree with each other: the parked age, the counts, a paused
rebuild, the rebuild form's reminder (issue 17's review)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from reactions_admin.models import ParkedStream
from tests.contract.conftest import ParkedWorld
from tests.factories import operator

pytestmark = pytest.mark.django_db(transaction=True)


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_every_page_gives_a_parked_stream_the_same_age(parked: ParkedWorld) -> None:
    # Stuck for two hours: a "retry now" an hour ago failed and parked it again.
    now = timezone.now()
    ParkedStream.objects.filter(subscriber_name=parked.name).update(
        first_parked_at=now - timedelta(hours=2, minutes=5), parked_at=now - timedelta(hours=1)
    )
    client = logged_in(operator())
    pages = {
        "home": reverse("console-fragment"),
        "subscriber": reverse("admin:subscribers_bookmark_change", args=[parked.name]),
        "bookmarks": reverse("admin:subscribers_bookmark_changelist"),
        "parked streams": reverse("admin:reactions_admin_parkedstream_changelist"),
    }
    for page, url in pages.items():
        response = client.get(url)
        assert response.status_code == 200, page
        text = response.content.decode()
        assert "(2 h 5 min ago)" in text, page
        assert "1 h ago" not in text, page
