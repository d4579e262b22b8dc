"""``manage.py ensure_operator``: make sure a console login exists and say how to use it."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from config import secret_file


class Command(BaseCommand):
    help = (
        "Create the local operator account (a superuser) on first run, with a random password "
        "kept in .data/operator-password, and print how to log in."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")

    def handle(self, *args: Any, **options: Any) -> None:
        username: str = options["username"]
        password_file = Path(settings.BASE_DIR) / ".data" / "operator-password"
        users = get_user_model()
        user = users.objects.filter(username=username).first()
        if user is None:
            # The file first, atomically (mode 0600): a password left by an earlier database
            # is reused, so what the file says is always what works.
            password = secret_file.read_or_create(password_file, lambda: secrets.token_urlsafe(12))
            users.objects.create_superuser(username=username, email="", password=password)
            self.stdout.write(f"Created the operator account {username!r}.")
        if password_file.exists():
            password = password_file.read_text().strip()
            self.stdout.write(f"Log in as: {username} / {password}   (kept in {password_file})")
        else:
            self.stdout.write(
                f"Log in as {username!r} with its password "
                f"(reset it with: .venv/bin/python manage.py changepassword {username})."
            )
