"""Fixtures of the reliability suite: its tables (the processes fixture is tests/conftest.py's)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection

from tests.reliability.subscribers import DROP_TABLES, TABLES


@pytest.fixture
def rel_tables(transactional_db: None) -> Iterator[None]:
    """Fresh read-model and log tables, and the bookmark-move trigger (dropped after)."""
    with connection.cursor() as cursor:
        cursor.execute(TABLES)
    yield
    with connection.cursor() as cursor:
        cursor.execute(DROP_TABLES)
