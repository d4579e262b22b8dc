"""Helpers for the browser tests: log into the admin, watch for script that must not run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Where the tests leave screenshots for a person to look at: in the project's own data
#: directory, which whoever runs the tests owns.
SHOTS = Path(__file__).resolve().parents[2] / ".data" / "screenshots"

#: Hostile text: each would set window.__xss (and the title) if the browser ran it.
SCRIPT = "<script>window.__xss = 'script'; document.title = 'pwned'</script>"
IMG = "<img src=x onerror='window.__xss = `img`; document.title = `pwned`'>"


def log_in(page: Any, base_url: str, username: str, password: str, next_path: str) -> None:
    """Log in through the admin's real login form and land on ``next_path``."""
    page.goto(f"{base_url}/admin/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base_url}{next_path}")


def watch_for_script(page: Any) -> list[str]:
    """Dialogs the page opens (an ``alert`` would be one); the test asserts there are none."""
    dialogs: list[str] = []

    def dismiss(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    return dialogs


def assert_inert(page: Any, dialogs: list[str], *literals: str) -> None:
    """Nothing hostile ran on the page, and each literal is shown as text."""
    assert page.evaluate("window.__xss === undefined"), page.evaluate("window.__xss")
    assert page.title() != "pwned"
    assert dialogs == []
    assert page.locator("script:has-text('__xss')").count() == 0
    assert page.locator("img[onerror]").count() == 0
    text = page.inner_text("body")
    for literal in literals:
        assert literal in text, f"{literal!r} is not shown as text on {page.url}"
