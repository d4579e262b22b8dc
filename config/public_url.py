"""The console served over HTTPS behind a proxy: Django's settings that follow from one URL.

``EVENTDESK_PUBLIC_URL=https://ops.example.com`` is where people reach the console. From
it follow the host Django answers to, the origin its CSRF check trusts, secure cookies,
HSTS and the redirect of plain HTTP to that URL — except ``/metrics``, which Prometheus
scrapes over plain HTTP inside the network. Whether a request came in over HTTPS is
the proxy's to say: uvicorn believes ``X-Forwarded-Proto`` from the addresses in
``--forwarded-allow-ips`` (127.0.0.1 by default), or, opt-in,
``EVENTDESK_PROXY_SSL_HEADER`` names a header Django believes from anyone (only safe
when the console is reachable through the proxy alone). docs/deployment.md says which
to choose and why each silenced check is silenced.

Without a public URL nothing here applies: ``make run`` serves plain HTTP on 127.0.0.1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

#: Paths (Django's SECURE_REDIRECT_EXEMPT: regexes on the path without its leading
#: slash) served over plain HTTP too: the gauges Prometheus scrapes inside the network.
REDIRECT_EXEMPT = [r"^metrics$"]

#: The deploy checks that stay silent with a public URL, and why (docs/deployment.md).
SILENCED_CHECKS = [
    # HSTS includeSubDomains: it would bind every host below the console's (which
    # Eventdesk does not serve and cannot vouch for) to HTTPS for a year.
    "security.W005",
    # HSTS preload: a submission to the browsers' list for the whole registrable
    # domain, made by its owner, from the apex, and slow to undo; not an app's choice.
    "security.W021",
]

_HEADER = re.compile(r"^[A-Za-z0-9-]+$")


@dataclass(frozen=True)
class PublicUrl:
    """``https://host[:port]``: where people reach the console."""

    host: str
    port: int | None

    @property
    def netloc(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    @property
    def origin(self) -> str:
        return f"https://{self.netloc}"


def parse(url: str) -> PublicUrl:
    """``https://ops.example.com`` → PublicUrl; anything else is refused with the reason."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ImproperlyConfigured(f"EVENTDESK_PUBLIC_URL={url!r}: {exc}") from exc
    if parts.scheme != "https":
        raise ImproperlyConfigured(
            f"EVENTDESK_PUBLIC_URL={url!r} must start with https:// (it says the console is "
            "served over HTTPS; for plain HTTP, list the hosts in DJANGO_ALLOWED_HOSTS)"
        )
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise ImproperlyConfigured(f"EVENTDESK_PUBLIC_URL={url!r} must name a host, no user")
    if parts.path not in {"", "/"} or parts.query or parts.fragment:
        raise ImproperlyConfigured(
            f"EVENTDESK_PUBLIC_URL={url!r}: the console is served at the root of its host "
            "(no path, query or fragment)"
        )
    return PublicUrl(host=parts.hostname, port=None if port == 443 else port)


def https_settings(
    url: str, *, allowed_hosts: list[str], proxy_ssl_header: str, hsts_seconds: int
) -> dict[str, Any]:
    """The Django settings for a console served at ``url`` (settings.py applies them).

    ``allowed_hosts`` are the names it answers to inside the network (DJANGO_ALLOWED_HOSTS:
    a scraping Prometheus, a health check); the public host is added to them.
    """
    public = parse(url)
    settings: dict[str, Any] = {
        "ALLOWED_HOSTS": [public.host, *(h for h in allowed_hosts if h != public.host)],
        "CSRF_TRUSTED_ORIGINS": [public.origin],
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_SSL_REDIRECT": True,
        # Redirect to the public URL, not to whatever host a plain-HTTP request named.
        "SECURE_SSL_HOST": public.netloc,
        "SECURE_REDIRECT_EXEMPT": list(REDIRECT_EXEMPT),
        "SECURE_HSTS_SECONDS": hsts_seconds,
        "SILENCED_SYSTEM_CHECKS": list(SILENCED_CHECKS),
    }
    if proxy_ssl_header:
        if not _HEADER.match(proxy_ssl_header):
            raise ImproperlyConfigured(
                f"EVENTDESK_PROXY_SSL_HEADER={proxy_ssl_header!r} must be a header name, "
                "such as X-Forwarded-Proto"
            )
        meta_key = "HTTP_" + proxy_ssl_header.upper().replace("-", "_")
        settings["SECURE_PROXY_SSL_HEADER"] = (meta_key, "https")
    return settings
