"""The console's pages agree with each other: the parked age, the counts, a paused
rebuild, the rebuild form's reminder (issue 17's review)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from reactions_admin.acts.act import OnSubscriber
from reactions_admin.acts.rebuilds.decider import Choice
from reactions_admin.acts.rebuilds.handler import PAUSE
from reactions_admin.models import ParkedStream
from subscribers.rebuilds.progress import PAUSE_CHOICE
from tests.contract.conftest import ParkedWorld
from tests.factories import operator

pytestmark = pytest.mark.django_db(transaction=True)

REBUILT = "test.rb_totals"


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
    head = ParkedStream.objects.get(subscriber_name=parked.name, stream_id="bad")
    confirm = {"action": "dismiss_heads", ACTION_CHECKBOX_NAME: [head.pk], "index": 0}
    for page, url in [*pages.items(), ("parked streams' action", pages["parked streams"])]:
        response = client.post(url, confirm) if "action" in page else client.get(url)
        assert response.status_code == 200, page
        text = response.content.decode()
        assert "(2 h 5 min ago)" in text, page
        assert "1 h ago" not in text, page


def rebuilder(username: str) -> User:
    """A staff user who may rebuild projections (and so read the console)."""
    user = User.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(
            codename="rebuild_projection", content_type__app_label="reactions_admin"
        )
    )
    return User.objects.get(pk=user.pk)


def test_a_paused_rebuild_shows_its_progress_and_who_paused_it_why(rebuilds: Any) -> None:
    rebuilds.started()  # no worker has counted its events yet
    alice = rebuilder("alice")
    PAUSE(OnSubscriber(REBUILT, "the nightly batch window"), alice, via="admin")
    client = logged_in(alice)
    page = client.get(reverse("admin:subscribers_bookmark_rebuild", args=[REBUILT]))
    text = page.content.decode()
    assert page.status_code == 200
    assert "0 of 20" in text  # the events it has to replay, not "0 of 0"
    assert "by alice since " in text
    assert "the nightly batch window" in text
    home = client.get(reverse("console-fragment")).content.decode()
    assert "rebuild paused: 0 of 20 events; paused by alice since " in home
    assert "the nightly batch window" in home
    assert Choice.PAUSE.value == PAUSE_CHOICE  # the engine reads the act's decision


def test_the_rebuild_form_says_to_deploy_the_fix_first(rebuilds: Any) -> None:
    client = logged_in(rebuilder("alice"))
    changelist = reverse("admin:subscribers_bookmark_changelist")
    selected = {"action": "rebuild_action", ACTION_CHECKBOX_NAME: [REBUILT], "index": 0}
    form = client.post(changelist, selected).content.decode()
    assert "Deploy the fixed projection code to the workers first" in form
    assert "a rebuild replays the events through the code the workers run now" in form
    rebuilds.started()
    pause = client.post(changelist, {**selected, "action": "pause_rebuild_action"})
    assert "Deploy the fixed projection code" not in pause.content.decode()  # a start's note
