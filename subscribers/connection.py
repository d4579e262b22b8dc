"""Letting go of this thread's Django connection, even a broken one."""

from __future__ import annotations

from django.db import connection


def discard_connection() -> None:
    """Close this thread's connection; the next query opens a fresh one."""
    try:
        connection.close()
    except Exception:  # a broken connection may fail to close; it is dropped either way
        connection.connection = None
