"""The console under uvicorn, as docs/deployment.md runs it behind a TLS-terminating proxy
on the same host: uvicorn believes X-Forwarded-Proto from 127.0.0.1 (its default
--forwarded-allow-ips), so no Django setting has to trust a header."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def _get(base_url: str, path: str, **headers: str) -> http.client.HTTPResponse:
    """One request, redirects not followed."""
    netloc = urlsplit(base_url).netloc
    connection = http.client.HTTPConnection(netloc, timeout=30)
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def test_a_request_the_proxy_forwarded_is_https(launch_console) -> None:
    served = launch_console(EVENTDESK_PUBLIC_URL="https://ops.example.com")
    proxied = _get(served.base_url, "/admin/login/", **{"X-Forwarded-Proto": "https"})
    assert proxied.status == 200
    assert proxied.getheader("Strict-Transport-Security") == "max-age=31536000"
    assert "Secure" in (proxied.getheader("Set-Cookie") or "")
    plain = _get(served.base_url, "/admin/login/")
    assert plain.status == 301
    assert plain.getheader("Location") == "https://ops.example.com/admin/login/"
    # Prometheus inside the network: answered over plain HTTP, not redirected.
    assert _get(served.base_url, "/metrics").status == 401
