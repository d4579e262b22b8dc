"""The bookmarks page names a transaction that holds every subscriber back."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from reactions_admin.doors.admin import bookmarks as bookmark_admin
from tests.support import raw_connection

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_changelist_warns_about_an_old_open_transaction(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = get_user_model().objects.create_superuser("operator", password="x" * 12)
    client.force_login(user)
    url = "/admin/subscribers/bookmark/"

    monkeypatch.setattr(bookmark_admin, "HORIZON_WARNING_SECONDS", 0.2)
    with raw_connection(autocommit=False) as idle:
        idle.execute("SET application_name = 'nightly-report'")
        idle.execute("SELECT pg_current_xact_id()")
        time.sleep(0.5)
        page = client.get(url).content.decode()
        assert "Subscribers are held back" in page
        assert "nightly-report" in page
        assert f"pg_terminate_backend({idle.info.backend_pid})" in page
        idle.rollback()
    assert "nightly-report" not in client.get(url).content.decode()
