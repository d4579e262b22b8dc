"""The admin door: the "Dismiss event…" action posted through the real changelist URL,
then its form (the way Django's own tests/admin_views/test_actions.py does it)."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from eventstore.types import RecordedEvent
from subscribers.models import Bookmark
from tests.factories import operator, wedged_mailer
from tests.support import decisions, dismissal_form

# Transactional: a dismissal only targets an event every reader sees (committed, under
# the horizon); an event appended inside the test's own transaction never is.
pytestmark = pytest.mark.django_db(transaction=True)

CHANGELIST = reverse("admin:subscribers_bookmark_changelist")
SCRIPT = "<script>alert('pwned')</script>"


@pytest.fixture
def events():
    return wedged_mailer(4, data={"note": SCRIPT})


def logged_in(*, permitted: bool = True) -> Client:
    client = Client()
    client.force_login(operator(permitted=permitted))
    return client


def open_form(client: Client, *names: str):
    return client.post(
        CHANGELIST, {"action": "dismiss_event", ACTION_CHECKBOX_NAME: list(names), "index": 0}
    )


def submit(client: Client, event: RecordedEvent, reason: str, *, preview: bool = False):
    """The form, submitted for "mailer": Preview, or Dismiss the event."""
    form = dismissal_form("mailer", event.event_id, reason, preview=preview)
    return client.post(CHANGELIST, form)


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_the_action_is_offered_on_the_changelist(events) -> None:
    response = logged_in().get(CHANGELIST)
    assert response.status_code == 200
    assert b'value="dismiss_event"' in response.content
    assert "Dismiss event…" in response.content.decode()


def test_the_form_shows_the_failing_event_escaped_and_what_is_passed_over(events) -> None:
    response = open_form(logged_in(), "mailer")
    assert response.status_code == 200
    page = response.content.decode()
    assert str(events[1].event_id) in page  # defaults to the failing event
    assert "OrderPlaced" in page
    assert "orders-1" in page
    assert SCRIPT not in page
    assert "&lt;script&gt;" in page
    assert 'name="reason"' in page
    assert "The move passes over" in page


def test_submitting_the_form_dismisses_and_returns_to_the_changelist(events) -> None:
    client = logged_in()
    open_form(client, "mailer")
    response = submit(client, events[1], "poison payload")
    assert response.status_code == 302
    assert response["Location"].endswith(CHANGELIST)
    [message] = messages_of(response)
    assert message.startswith(f"Dismissed event {events[1].event_id} in mailer")
    bookmark = Bookmark.objects.get(pk="mailer")
    assert bookmark.cursor == events[1].cursor
    assert bookmark.status == Bookmark.Status.ACTIVE
    [decision] = decisions()
    assert decision.data["reason"] == "poison payload"
    assert decision.metadata["via"] == "admin"


def test_preview_shows_another_event(events) -> None:
    response = submit(logged_in(), events[3], "", preview=True)
    assert response.status_code == 200
    assert str(events[3].event_id) in response.content.decode()
    assert decisions() == []


def test_a_refusal_is_shown_as_an_error_message(events) -> None:
    response = submit(logged_in(), events[0], "rewind")
    assert response.status_code == 302
    [message] = messages_of(response)
    assert "rewind_refused" in message
    assert Bookmark.objects.get(pk="mailer").cursor == events[0].cursor
    assert decisions() == []


def test_a_blank_reason_redisplays_the_form(events) -> None:
    response = submit(logged_in(), events[1], "")
    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
    assert decisions() == []


def test_exactly_one_reaction_must_be_selected(events) -> None:
    Bookmark.objects.create(subscriber_name="pager", kind=Bookmark.Kind.REACTION)
    response = open_form(logged_in(), "mailer", "pager")
    assert response.status_code == 302
    assert messages_of(response) == ["Select exactly one reaction."]


def test_without_the_permission_nothing_is_dismissed(events) -> None:
    client = logged_in(permitted=False)
    # Like delete_selected: the action is not offered to a user without its permission,
    # and a crafted POST of it is no action at all: the changelist again.
    assert b'value="dismiss_event"' not in client.get(CHANGELIST).content
    response = open_form(client, "mailer")
    assert response.status_code == 200
    assert b'value="dismiss_event"' not in response.content
    response = submit(client, events[1], "sneaky")
    assert b'value="dismiss_event"' not in response.content
    assert Bookmark.objects.get(pk="mailer").cursor == events[0].cursor
    assert decisions() == []


def superuser_client() -> Client:
    from django.contrib.auth.models import User

    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw-for-tests"))
    return client


def test_the_events_page_is_read_only_and_searchable(events) -> None:
    client = superuser_client()
    changelist = reverse("admin:eventstore_event_changelist")
    response = client.get(changelist, {"q": str(events[2].event_id)})
    assert response.status_code == 200
    assert str(events[2].event_id) in response.content.decode()
    assert client.get(reverse("admin:eventstore_event_add")).status_code == 403
    detail = client.get(reverse("admin:eventstore_event_change", args=[events[2].position]))
    assert detail.status_code == 200
    assert SCRIPT not in detail.content.decode()


def test_the_decisions_page_shows_who_when_which_and_why(events) -> None:
    client = superuser_client()
    submit(client, events[1], "<i>bad</i> data")
    response = client.get(reverse("admin:reactions_admin_decision_changelist"))
    page = response.content.decode()
    assert response.status_code == 200
    for shown in ("root", "mailer", str(events[1].event_id)):
        assert shown in page
    assert "&lt;i&gt;bad&lt;/i&gt; data" in page
    assert client.get(reverse("admin:reactions_admin_decision_add")).status_code == 403


def test_the_token_page_never_shows_a_secret(events) -> None:
    from reactions_admin.acts.tokens.handler import issue_token

    issued = issue_token(operator("robot"))
    client = superuser_client()
    response = client.get(reverse("admin:reactions_admin_apitoken_changelist"))
    page = response.content.decode()
    assert issued.token.prefix in page
    assert issued.secret not in page
    assert issued.token.digest not in page
    detail = client.get(reverse("admin:reactions_admin_apitoken_change", args=[issued.token.pk]))
    assert issued.token.digest not in detail.content.decode()
