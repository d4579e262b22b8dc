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
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": host,
        "PORT": str(parts.port or ""),
        "OPTIONS": dict(parse_qsl(parts.query)),
    }
