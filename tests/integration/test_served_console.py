"""The server `make run` starts (uvicorn and config.asgi, DEBUG off by default), over
plain HTTP: it serves the static files, shows no URLconf on a 404, logs a 404 once, and
makes its own secret key."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import uuid

import pytest

from tests.support import ROOT, wait_for

#: What Django's technical 404 page (DEBUG on) says and the plain one must not.
URLCONF_TELLS = ("URLconf", "config.urls", "Using the URLconf")
#: The key settings.py had hard-coded before issue 9.
OLD_DEFAULT_KEY = "eventdesk-development-key-not-for-production-use-0123456789"


def test_the_admin_stylesheet_is_served(console_server) -> None:
    assert "#header" in console_server.page("/static/admin/css/base.css")


def test_the_api_docs_use_swagger_served_here(console_server) -> None:
    page = console_server.page("/agent/docs")
    assert "/static/ninja/swagger-ui-bundle.js" in page
    assert "cdn" not in page.lower()
    assert "SwaggerUIBundle" in console_server.page("/static/ninja/swagger-ui-bundle.js")


def test_a_404_does_not_show_the_urlconf(console_server) -> None:
    status, body = console_server.get("/no-such-page/")
    assert status == 404
    for tell in URLCONF_TELLS:
        assert tell not in body


@pytest.mark.parametrize("debug", ["", "1"], ids=["debug-off", "debug-on"])
def test_a_static_404_is_logged_once(launch_console, debug: str) -> None:
    served = launch_console(DJANGO_DEBUG=debug)
    # Short paths: a log handler that wraps long lines must not hide a copy.
    missing, marker = (f"/static/x{uuid.uuid4().hex[:8]}.css" for _ in range(2))
    assert served.get(missing)[0] == 404
    # The server logs a request before it answers it: once the later request's line is
    # there, every line the first one will ever get is there too.
    assert served.get(marker)[0] == 404
    wait_for(lambda: marker in served.output(), what="the server to log the second 404")
    output = served.output()
    assert output.count(missing) == 1, output
    assert f"Not Found: {missing}" in output


def secret_key_of_a_new_process() -> str:
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SECRET_KEY"}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    show = "from django.conf import settings; print(settings.SECRET_KEY)"
    done = subprocess.run(
        [sys.executable, "-c", show],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def test_without_a_secret_key_in_the_environment_one_is_made_and_kept() -> None:
    keys = [secret_key_of_a_new_process() for _ in range(2)]
    kept = ROOT / ".data" / "secret-key"
    assert keys == [kept.read_text().strip()] * 2
    assert keys[0] != OLD_DEFAULT_KEY
    assert len(keys[0]) >= 50
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
