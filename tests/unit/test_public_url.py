"""EVENTDESK_PUBLIC_URL: what is accepted, what is refused, and the settings that follow."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.options import resolve
from config.public_url import https_settings, parse


@pytest.mark.parametrize(
    ("url", "host", "port", "origin"),
    [
        ("https://ops.example.com", "ops.example.com", None, "https://ops.example.com"),
        ("https://ops.example.com/", "ops.example.com", None, "https://ops.example.com"),
        ("https://OPS.Example.com:443", "ops.example.com", None, "https://ops.example.com"),
        ("https://ops.example.com:8443", "ops.example.com", 8443, "https://ops.example.com:8443"),
    ],
)
def test_a_public_url_names_a_host(url: str, host: str, port: int | None, origin: str) -> None:
    public = parse(url)
    assert (public.host, public.port, public.origin) == (host, port, origin)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://ops.example.com", "https://"),
        ("ops.example.com", "https://"),
        ("https://", "host"),
        ("https://admin:secret@ops.example.com", "no user"),
        ("https://ops.example.com/eventdesk", "root of its host"),
        ("https://ops.example.com/?next=/", "root of its host"),
        ("https://ops.example.com:99999", "Port out of range"),
    ],
)
def test_anything_else_is_refused_with_the_reason(url: str, why: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=why):
        parse(url)


def test_the_settings_that_follow() -> None:
    settings = https_settings(
        "https://ops.example.com",
        allowed_hosts=["127.0.0.1", "localhost"],
        proxy_ssl_header="",
        hsts_seconds=3600,
    )
    assert settings["ALLOWED_HOSTS"] == ["ops.example.com", "127.0.0.1", "localhost"]
    assert settings["CSRF_TRUSTED_ORIGINS"] == ["https://ops.example.com"]
    assert settings["SESSION_COOKIE_SECURE"] is settings["CSRF_COOKIE_SECURE"] is True
    assert settings["SECURE_SSL_REDIRECT"] is True
    assert settings["SECURE_SSL_HOST"] == "ops.example.com"
    assert settings["SECURE_REDIRECT_EXEMPT"] == [r"^metrics$"]
    assert settings["SECURE_HSTS_SECONDS"] == 3600
    # Opt-in only: without it, Django believes no header (uvicorn's proxy handling decides).
    assert "SECURE_PROXY_SSL_HEADER" not in settings


def test_the_proxy_header_is_opt_in_and_must_be_a_header_name() -> None:
    public = "https://ops.example.com"
    settings = https_settings(
        public, allowed_hosts=[], proxy_ssl_header="X-Forwarded-Proto", hsts_seconds=1
    )
    assert settings["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")
    with pytest.raises(ImproperlyConfigured, match="header name"):
        https_settings(public, allowed_hosts=[], proxy_ssl_header="X: https", hsts_seconds=1)


@pytest.mark.parametrize(
    ("configured", "why"),
    [
        ({"proxy_ssl_header": "X-Forwarded-Proto"}, "needs public_url"),
        ({"public_url": "https://ops.example.com", "hsts_seconds": -1}, "not be negative"),
        ({"hsts_seconds": "a year"}, "hsts_seconds"),
    ],
)
def test_bad_https_options_are_refused(
    configured: dict[str, object], why: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("PUBLIC_URL", "PROXY_SSL_HEADER", "HSTS_SECONDS"):
        monkeypatch.delenv(f"EVENTDESK_{name}", raising=False)
    with pytest.raises(ImproperlyConfigured, match=why):
        resolve(configured)
