"""``--as OPERATOR``: who the token commands name in their audit."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.management.base import CommandError


def acting_user(options: dict[str, Any]) -> AbstractBaseUser | None:
    """The active user named by ``--as``, or None (the audit then names the OS account)."""
    username = options.get("acting")
    if username is None:
        return None
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise CommandError(f"--as: no active user named {username!r}.")
    return user
