"""Real Chromium (Debian's package) driven by Playwright against a live Django server.

Playwright's sync API runs an event loop in the test's thread, so Django's
async-safety check must be relaxed for these tests only.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections

CHROMIUM = os.environ.get("EVENTDESK_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"Chromium is required in CI but {CHROMIUM} is missing (see .ci/run)")
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's chromium package to run these")
    return CHROMIUM


@pytest.fixture
def page(chromium_path: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=LAUNCH_ARGS)
        context = browser.new_context()
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()
            # A connection the test opened while Playwright's loop ran is not the one
            # pytest-django closes before dropping the test database ("database is being
            # accessed by other users"): close it here, in the test's own context.
            connections.close_all()
