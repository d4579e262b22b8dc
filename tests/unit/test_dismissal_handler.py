"""The handler's refusals that come before any database access: authorization and the store.

Pure: the actors are unsaved users (an active superuser holds every permission
without a query) and a fake user without the permission.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.test import override_settings

from reactions_admin import errors
from reactions_admin.acts.dismissal.handler import dismiss_event_in_reaction


@dataclass
class UserWithoutPermissions:
    """A logged-in user holding no permission (a fake, not a mock)."""

    pk: int = 7
    is_authenticated: bool = True
    is_active: bool = True

    def has_perm(self, permission: str) -> bool:
        return False

    def get_username(self) -> str:
        return "intern"


def superuser() -> User:
    return User(pk=1, username="root", is_superuser=True, is_active=True)


def test_an_anonymous_actor_is_refused_with_401() -> None:
    with pytest.raises(errors.NotAuthenticated) as refused:
        dismiss_event_in_reaction("mailer", uuid.uuid4(), "reason", AnonymousUser())
    assert (refused.value.status, refused.value.code) == (401, "not_authenticated")


def test_an_inactive_user_is_refused_with_401() -> None:
    user = User(pk=2, username="gone", is_superuser=True, is_active=False)
    with pytest.raises(errors.NotAuthenticated):
        dismiss_event_in_reaction("mailer", uuid.uuid4(), "reason", user)


def test_an_actor_without_the_permission_is_refused_with_403() -> None:
    with pytest.raises(errors.PermissionDenied) as refused:
        dismiss_event_in_reaction("mailer", uuid.uuid4(), "reason", UserWithoutPermissions())  # type: ignore[arg-type]
    assert (refused.value.status, refused.value.code) == (403, "permission_denied")
    assert refused.value.as_payload()["code"] == "permission_denied"


@override_settings(EVENTDESK={"event_store": "memory"})
def test_the_in_memory_store_is_refused_with_503() -> None:
    with pytest.raises(errors.EventStoreNotDurable) as refused:
        dismiss_event_in_reaction("mailer", uuid.uuid4(), "reason", superuser())
    assert (refused.value.status, refused.value.code) == (503, "event_store_not_durable")


def test_a_malformed_event_id_is_refused_with_400() -> None:
    with pytest.raises(errors.InvalidEventId) as refused:
        dismiss_event_in_reaction("mailer", "not-a-uuid", "reason", superuser())
    assert (refused.value.status, refused.value.code) == (400, "invalid_event_id")
