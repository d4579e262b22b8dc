"""Parse ``DATABASE_URL`` into a Django ``DATABASES`` entry (no extra dependency)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit


class InvalidDatabaseUrl(ValueError):
    """DATABASE_URL is not a postgres:// or postgresql:// URL Eventdesk can use."""


def parse(url: str) -> dict[str, Any]:
    """``postgresql://user:password@host:port/name?sslmode=require`` → DATABASES entry.

    A host that starts with ``%2F`` (an encoded ``/``) is a unix socket directory.
    """
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise InvalidDatabaseUrl(
            f"DATABASE_URL must start with postgresql://, got scheme {parts.scheme!r}"
        )
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise InvalidDatabaseUrl("DATABASE_URL names no database (postgresql://host/NAME)")
    host = unquote(parts.hostname or "") if "%2f" not in parts.netloc.lower() else ""
    if not host and "@" in parts.netloc:
        host = unquote(parts.netloc.rsplit("@", 1)[1].split(":")[0])
    elif not host:
        host = unquote(parts.netloc.split(":")[0])
    options: dict[str, Any] = dict(parse_qsl(parts.query))
    if "prepare_threshold" in options:
        value = options["prepare_threshold"].lower()
        if value not in {"", "none", "off"} and not value.isdigit():
            raise InvalidDatabaseUrl("prepare_threshold must be a whole number or none")
        options["prepare_threshold"] = int(value) if value.isdigit() else None
    if "server_side_binding" in options:
        flag = options["server_side_binding"].lower()
        options["server_side_binding"] = flag in {"1", "true", "on", "yes"}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": host,
        "PORT": str(parts.port or ""),
        "OPTIONS": options,
    }
