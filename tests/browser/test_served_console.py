"""What a person sees on the server `make run` starts (uvicorn and config.asgi, DEBUG off):
the admin is styled, and the API docs render with the outside world cut off."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User

from tests.browser.support import SHOTS, log_in

pytestmark = pytest.mark.django_db(transaction=True)

#: The first operation of the API, as Swagger UI lists it.
AN_OPERATION = "/agent/reactions"


def only_this_machine(page: Any) -> list[str]:
    """Abort every request that would leave 127.0.0.1 (a CDN, say); return them."""
    blocked: list[str] = []

    def route(request_route: Any) -> None:
        url = request_route.request.url
        if urlsplit(url).hostname == "127.0.0.1":
            request_route.continue_()
        else:
            blocked.append(url)
            request_route.abort()

    page.route("**/*", route)
    return blocked


def test_the_admin_is_styled(page, console_server) -> None:
    User.objects.create_superuser("root", password="pw-for-tests")
    log_in(page, console_server.base_url, "root", "pw-for-tests", "/admin/")
    loaded = page.evaluate(
        """() => [...document.styleSheets]
                .filter(sheet => sheet.href && sheet.href.endsWith('/static/admin/css/base.css'))
                .map(sheet => sheet.cssRules.length)"""
    )
    assert loaded, "the admin's base.css is not among the page's stylesheets"
    assert loaded[0] > 100, "base.css loaded without its rules"
    # What an unstyled page gets wrong: the header has the admin's colour, the sidebar
    # of apps is not dumped above the content, the theme icons are small.
    header = page.evaluate("getComputedStyle(document.querySelector('#header')).backgroundColor")
    assert header not in {"rgba(0, 0, 0, 0)", "transparent"}
    assert page.evaluate("getComputedStyle(document.querySelector('#header')).display") == "flex"
    icons = page.evaluate(
        """() => [...document.querySelectorAll('.theme-toggle svg')]
                .map(svg => svg.getBoundingClientRect().width)"""
    )
    assert icons
    assert max(icons) <= 32, f"theme icons {icons} px wide"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "admin-index.png"), full_page=True)


def test_the_api_docs_render_offline(page, console_server) -> None:
    blocked = only_this_machine(page)
    page.goto(f"{console_server.base_url}/agent/docs")
    page.wait_for_selector(".swagger-ui .opblock", timeout=60_000)
    operations = page.locator(".swagger-ui .opblock-summary-path").all_inner_texts()
    assert any(path.startswith(AN_OPERATION) for path in operations), operations
    assert blocked == [], f"the docs page asked the outside world for {blocked}"
