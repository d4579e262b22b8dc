"""Django settings for Eventdesk.

With ``DATABASE_URL`` unset, Eventdesk uses its embedded PostgreSQL (see
``config/embedded_pg.py``); with it set, that server.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.management.utils import get_random_secret_key

from config import database_url, embedded_pg, pooler, secret_file
from config.options import resolve as resolve_eventdesk_options
from config.public_url import https_settings

BASE_DIR = Path(__file__).resolve().parent.parent

# Off unless asked for (DJANGO_DEBUG=1): with it on, any 404 shows the URLconf.
DEBUG = os.environ.get("DJANGO_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}
# Without DJANGO_SECRET_KEY, a key of this installation's own, made on first use (and
# `check --deploy` says so: config/checks.py).
SECRET_KEY_MADE_HERE = not os.environ.get("DJANGO_SECRET_KEY")
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or secret_file.read_or_create(
    BASE_DIR / ".data" / "secret-key", get_random_secret_key
)
ALLOWED_HOSTS = [
    h
    for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")
    if h
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # django-ninja's own templates and static files: /agent/docs works offline.
    "ninja",
    "eventstore",
    "subscribers",
    "reactions_admin",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files (the admin's CSS and JS, Swagger UI) from the app server itself,
    # DEBUG or not: `make run` is uvicorn alone, with no web server in front.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so it sees the URL resolver's 404 and the view's answer: every error under
    # /agent/ is JSON {"code", "detail"}, never an HTML page.
    "reactions_admin.doors.rest.errors.agent_json_errors",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

if os.environ.get("DATABASE_URL"):
    _database = database_url.parse(os.environ["DATABASE_URL"])
    # Django's backend, with a pooled connection checked before use (a restart's dead ones).
    _database["ENGINE"] = "config.postgres_backend"
else:
    _database = embedded_pg.connection_settings(embedded_pg.resolve_layout(BASE_DIR))
# Server-side binding with psycopg's automatic preparation: a projection or an appender
# repeats the same statements, and a prepared one skips parsing and planning (the
# append benchmark: about 2x). Behind a transaction-mode pooler, EVENTDESK_DB_POOLER=
# transaction turns preparation off (config/pooler.py; docs/pooler.md).
EVENTDESK_DB_POOLER = pooler.pooler_mode(os.environ.get("EVENTDESK_DB_POOLER"))
pooler.apply_pooler(_database, EVENTDESK_DB_POOLER)
_options = _database["OPTIONS"]
# Connections come from Django's built-in psycopg pool (psycopg-pool): a process holds at
# most EVENTDESK_DB_POOL_MAX_SIZE backends, however many threads use the ORM (a worker's
# handle calls at a high concurrency wait for a free connection instead of each opening
# one). A thread's connection goes back to the pool when Django closes it (the end of a
# request, of a handle call); prepared statements then live as long as the pooled
# connection. 0 turns the pool off (one connection per thread, as Django does without).
# EVENTDESK_DB_POOL_TIMEOUT_SECONDS bounds the wait for a free connection: short, so that
# with the database down a request answers 503 at once rather than hanging, and a handle
# that finds the pool busy fails its attempt (retried with backoff) rather than stalling.
_pool_max_size = int(os.environ.get("EVENTDESK_DB_POOL_MAX_SIZE", "10"))
_pool_timeout = float(os.environ.get("EVENTDESK_DB_POOL_TIMEOUT_SECONDS", "5"))
if _pool_max_size > 0:
    _options.setdefault(
        "pool",
        {
            "min_size": 1,
            "max_size": _pool_max_size,
            "timeout": _pool_timeout,
            # psycopg_pool retries a failed connection 1 s, 2 s, 4 s... apart for up to
            # reconnect_timeout (300 s by default), so after a long outage the database
            # could be back for a minute before the next attempt. Short cycles instead,
            # one after the other (tries about 1 s apart while the database is down): the
            # first try after it is back succeeds (config/pooler.py).
            "reconnect_timeout": pooler.RECONNECT_TIMEOUT_SECONDS,
            "reconnect_failed": pooler.reconnect_again,
        },
    )
_database["TEST"] = {"NAME": os.environ.get("EVENTDESK_TEST_DATABASE", "test_eventdesk")}
DATABASES = {"default": _database}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# WhiteNoise serves the apps' static files where they lie (no collectstatic step, so
# no STATIC_ROOT), read once at start-up.
WHITENOISE_USE_FINDERS = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    # One handler for everything that propagates (Django's request log, libraries).
    # With a handler on the root, the MCP SDK's logging.basicConfig adds none of its own.
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        # Django's default "django" logger prints to the console itself when DEBUG is
        # on and propagates to the root as well: every "Not Found:" came out twice.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "eventdesk": {
            "handlers": ["console"],
            "level": os.environ.get("EVENTDESK_LOG_LEVEL", "INFO"),
            "propagate": False,
        },
    },
}

# Eventdesk's own options (see config/options.py; each overridable by EVENTDESK_<NAME>).
EVENTDESK: dict[str, object] = {
    # The demo's subscribers (demo/): what `make run` shows a new user.
    "subscribers": [
        "demo.projections.RunBoard",
        "demo.projections.AgentStatsProjection",
        "demo.projections.CautionLog",
        "demo.scorecards.AgentScorecards",
        "demo.reactions.RunDebriefer",
        "demo.reactions.CautionDrafter",
    ],
}

# Served over HTTPS behind a proxy (EVENTDESK_PUBLIC_URL=https://ops.example.com): the
# host, CSRF, cookie, HSTS and redirect settings that follow (config/public_url.py,
# docs/deployment.md). Unset, as for `make run`: none of them changes.
_eventdesk = resolve_eventdesk_options(EVENTDESK)
if _eventdesk.public_url:
    globals().update(
        https_settings(
            _eventdesk.public_url,
            allowed_hosts=ALLOWED_HOSTS,
            proxy_ssl_header=_eventdesk.proxy_ssl_header,
            hsts_seconds=_eventdesk.hsts_seconds,
        )
    )
