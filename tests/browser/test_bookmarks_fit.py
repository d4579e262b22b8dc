"""The Bookmarks list fits a 1400 px window beside its filter, in real Chromium against the
server `make run` starts: no column is cut off (issue 17's review)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from demo.scorecards import totals
from subscribers.registry import load_registry
from tests.browser.support import SHOTS, log_in
from tests.factories import operator
from tests.workers import drain

pytestmark = pytest.mark.django_db(transaction=True)

#: How far the list's table runs past the box that holds it (0 when it fits).
OVERFLOW = """() => {
  const box = document.querySelector('#changelist-form .results');
  return box.scrollWidth - box.clientWidth;
}"""


def test_the_bookmarks_list_fits_1400_px(page, console_server, rebuild_tables) -> None:
    call_command("seed_demo", stdout=io.StringIO())
    operator("operator", operates=True)
    # Every demo subscriber with a row, one of them retrying with a long error.
    drain(load_registry(), lambda: sum(totals().values()) == 11, "the demo's subscribers")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1400, "height": 900})
    log_in(
        page, console_server.base_url, "operator", "pw-for-tests", "/admin/subscribers/bookmark/"
    )
    page.screenshot(path=str(SHOTS / "bookmarks-1400.png"), full_page=True)
    assert page.locator("#result_list tbody tr").count() == 6
    assert page.evaluate(OVERFLOW) <= 0
    last = page.locator("#result_list thead th").last.bounding_box()
    assert last is not None
    assert last["x"] + last["width"] <= 1400
