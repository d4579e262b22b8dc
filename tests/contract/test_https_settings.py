"""Served over HTTPS behind a proxy (EVENTDESK_PUBLIC_URL): `check --deploy` reports
nothing, plain HTTP is sent to the public URL (except /metrics), cookies are secure, the
public origin passes the CSRF check; without it, not one of those settings changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from django.conf import global_settings
from django.test import Client, override_settings

from config.public_url import https_settings
from tests.support import ROOT

PUBLIC = "https://ops.example.com"
#: The variables that change the outcome: a test's subprocess starts without them.
HTTPS_VARIABLES = (
    "EVENTDESK_PUBLIC_URL",
    "EVENTDESK_PROXY_SSL_HEADER",
    "EVENTDESK_HSTS_SECONDS",
    "DJANGO_ALLOWED_HOSTS",
    "DJANGO_DEBUG",
    "DJANGO_SECRET_KEY",
)
#: A production host's key, the same on every host (docs/deployment.md).
SHARED_KEY = "a-key-every-host-shares-" + "x" * 40


def _settings_for(proxy_ssl_header: str = "") -> dict[str, object]:
    return https_settings(
        PUBLIC,
        allowed_hosts=["127.0.0.1", "localhost"],
        proxy_ssl_header=proxy_ssl_header,
        hsts_seconds=31_536_000,
    )


def _manage_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in HTTPS_VARIABLES}
    return {**env, **extra}


@pytest.fixture
def behind_proxy() -> Iterator[None]:
    with override_settings(**_settings_for()):
        yield


def test_check_deploy_reports_nothing_with_a_public_url() -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=_manage_env(EVENTDESK_PUBLIC_URL=PUBLIC, DJANGO_SECRET_KEY=SHARED_KEY),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    # Only the two HSTS checks docs/deployment.md explains are silenced.
    assert "System check identified no issues (2 silenced)." in output


def test_check_deploy_says_when_the_secret_key_is_this_hosts_own() -> None:
    # Without DJANGO_SECRET_KEY each host makes its own key in .data/: sessions and CSRF
    # tokens of one console process are refused by another.
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=_manage_env(EVENTDESK_PUBLIC_URL=PUBLIC),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "(eventdesk.W001) DJANGO_SECRET_KEY is not set" in output
    assert "System check identified 1 issue (2 silenced)." in output


def test_without_a_public_url_no_setting_changes() -> None:
    names = sorted(_settings_for("X-Forwarded-Proto"))
    program = (
        "import json, django; from django.conf import settings; django.setup(); "
        f"print(json.dumps({{n: getattr(settings, n) for n in {names!r}}}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT,
        env=_manage_env(DJANGO_SETTINGS_MODULE="config.settings"),
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    served = json.loads(done.stdout)
    assert served.pop("ALLOWED_HOSTS") == ["127.0.0.1", "localhost", "testserver"]
    defaults = {name: getattr(global_settings, name) for name in served}
    assert served == json.loads(json.dumps(defaults))


@pytest.mark.usefixtures("behind_proxy")
def test_plain_http_is_sent_to_the_public_url(client: Client) -> None:
    for host in ("ops.example.com", "127.0.0.1"):
        response = client.get("/admin/login/?next=/admin/", HTTP_HOST=host)
        assert response.status_code == 301
        assert response["Location"] == f"{PUBLIC}/admin/login/?next=/admin/"


@pytest.mark.django_db
@pytest.mark.usefixtures("behind_proxy")
def test_prometheus_scrapes_metrics_over_plain_http(client: Client) -> None:
    # Not redirected: answered (401 here, as without the public URL: no credentials).
    response = client.get("/metrics", HTTP_HOST="127.0.0.1")
    assert response.status_code == 401


@pytest.mark.usefixtures("behind_proxy")
def test_over_https_hsts_and_secure_cookies(client: Client) -> None:
    response = client.get("/admin/login/", secure=True, HTTP_HOST="ops.example.com")
    assert response.status_code == 200
    assert response["Strict-Transport-Security"] == "max-age=31536000"
    assert response.cookies["csrftoken"]["secure"] is True


@pytest.mark.django_db
@pytest.mark.usefixtures("behind_proxy", "admin_user")
@pytest.mark.parametrize(("origin", "status"), [(PUBLIC, 302), ("https://evil.example", 403)])
def test_the_public_origin_passes_the_csrf_check(origin: str, status: int) -> None:
    # The proxy passed its own upstream name as the Host (nginx's default): the origin
    # matches no host, and only CSRF_TRUSTED_ORIGINS lets the public one in.
    client = Client(enforce_csrf_checks=True)
    page = client.get("/admin/login/", secure=True, HTTP_HOST="127.0.0.1")
    token = page.cookies["csrftoken"].value
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": "admin", "password": "password", "csrfmiddlewaretoken": token},
        secure=True, HTTP_HOST="127.0.0.1", HTTP_ORIGIN=origin,
    )  # fmt: skip
    assert response.status_code == status
    if status == 302:
        assert response.cookies["sessionid"]["secure"] is True


def test_the_opt_in_proxy_header_marks_a_request_secure(client: Client) -> None:
    with override_settings(**_settings_for("X-Forwarded-Proto")):
        forwarded = client.get(
            "/admin/login/", HTTP_HOST="ops.example.com", HTTP_X_FORWARDED_PROTO="https"
        )
        plain = client.get("/admin/login/", HTTP_HOST="ops.example.com")
    assert forwarded.status_code == 200
    assert plain.status_code == 301
