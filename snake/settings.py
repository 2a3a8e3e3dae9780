"""Settings: every environment variable is optional and has a working loopback default."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from csp.constants import NONE, SELF, UNSAFE_EVAL, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from snake.secret import dev_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("SNAKE_VAR_DIR", BASE_DIR / "var"))


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if not value.strip():
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a whole number: set it to one, e.g. {name}={default} "
            "(the default), or unset it"
        ) from None


def parsed_url(name: str, value: str, parse: Callable[[str], Any], example: str) -> Any:
    """Parse the URL in variable `name`, or refuse it naming the variable and the fix."""
    try:
        return parse(value)
    except ValueError as exc:
        # A library's own error names neither the variable nor what to write instead.
        raise ImproperlyConfigured(
            f"{name}={value!r} cannot be parsed ({exc}): set it to a URL such as {example}, "
            "or unset it"
        ) from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# DJANGO_ENV=production: HTTPS only, and nothing that only suits a laptop is guessed.
DJANGO_ENV = os.environ.get("DJANGO_ENV", "")
if DJANGO_ENV not in ("", "development", "production"):
    # A typo must not quietly serve production over plain HTTP with a generated key.
    raise ImproperlyConfigured(
        f"DJANGO_ENV={DJANGO_ENV!r}: set DJANGO_ENV=production, or leave it unset for development"
    )
PRODUCTION = DJANGO_ENV == "production"
if PRODUCTION:
    REQUIRED = {
        "SECRET_KEY": "a long random string shared by every worker, e.g. the output of "
        "python -c 'from django.core.management.utils import get_random_secret_key as k; "
        "print(k())'",
        "ALLOWED_HOSTS": "the site's host names, comma-separated, e.g. snake.example.com",
    }
    for name, fix in REQUIRED.items():
        if not os.environ.get(name, "").strip():
            raise ImproperlyConfigured(f"DJANGO_ENV=production needs {name}: set it to {fix}")

# Django core
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured(
        "DJANGO_DEBUG=1 with DJANGO_ENV=production would show tracebacks and settings to "
        "anyone: unset DJANGO_DEBUG"
    )
SECRET_KEY = os.environ.get("SECRET_KEY") or dev_secret_key(VAR_DIR / "secret_key")
ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", f"localhost,127.0.0.1,[::1],{os.environ.get('HOST', '127.0.0.1')}"
)
# Only origins other than the site's own need listing (e.g. https://www.example.com).
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# A script that asked for JSON gets a JSON 403 that says how to pass the check.
CSRF_FAILURE_VIEW = "snake.errors.csrf_failure"
# Behind a proxy that terminates TLS, Django sees plain HTTP: the SSL redirect would loop and
# every move would fail the CSRF origin check. Naming the header the proxy sets (e.g.
# X-Forwarded-Proto) makes Django believe it, so only set it when clients cannot reach the
# server except through that proxy and the proxy overwrites whatever a client sent.
if os.environ.get("SECURE_PROXY_SSL_HEADER", "").strip():
    header = os.environ["SECURE_PROXY_SSL_HEADER"].strip().upper().replace("-", "_")
    SECURE_PROXY_SSL_HEADER = (f"HTTP_{header}", "https")
# The admin's sessions, auth and messages run under /admin/ only (snake/guards/adminonly.py),
# so the admin's checks for them in MIDDLEWARE would fail though they run.
SILENCED_SYSTEM_CHECKS = ["admin.E408", "admin.E409", "admin.E410", "axes.W002"]
if PRODUCTION:
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    # One year, the preload list's minimum; a first deployment may start lower, since browsers
    # keep refusing plain HTTP for this long.
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Asking to be preloaded into browsers is the domain owner's call and slow to undo, so
    # it is not made here; check --deploy's reminder of it is silenced for that reason.
    SILENCED_SYSTEM_CHECKS.append("security.W021")

INSTALLED_APPS = [
    "daphne",  # first, so that `runserver` serves ASGI
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "django_htmx",
    "csp",
    "snake",
]

MIDDLEWARE = [
    "snake.guards.proxies.ForwardedForMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # The language from Accept-Language (or Django's language cookie), never from the session:
    # the board's pages carry no session (adminonly below). Before anything that answers in words.
    "snake.language.LanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "snake.guards.charset.BodyCharsetMiddleware",  # before anything reads the form
    "snake.guards.adminonly.AdminOnlyMiddleware",  # sessions, auth, messages: /admin/ only
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

# The admin's login: 5 failures for one address and username within 15 minutes lock that pair
# for 15 minutes (django-axes, 429). The address is REMOTE_ADDR, which snake.guards.proxies has
# set to the client's when a trusted proxy sent the request.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["ip_address", "username"]]
AXES_RESET_ON_SUCCESS = True

ROOT_URLCONF = "snake.urls"
ASGI_APPLICATION = "snake.asgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                # The admin's; each reads the request only when a template asks (the admin's).
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# Kept as a setting so that snake/checks.py can say what is wrong with it.
DATABASE_URL = os.environ.get("DATABASE_URL", "").strip() or f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
DATABASES = {
    "default": parsed_url(
        "DATABASE_URL", DATABASE_URL, dj_database_url.parse, "postgres://USER:PASSWORD@HOST/NAME"
    )
}
# snake.handler's thread keeps its connection: check it before each request uses it.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock when a transaction starts, so concurrent moves queue on
    # `timeout` instead of failing with "database is locked" when a reader upgrades.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Only a deployment collects static files (into $STATIC_ROOT); `make run` serves them in place.
STATIC_ROOT = os.environ.get("STATIC_ROOT") or None

SNAKE_LOG_LEVEL = os.environ.get("SNAKE_LOG_LEVEL", "").strip() or "INFO"
if SNAKE_LOG_LEVEL not in logging.getLevelNamesMapping():
    # Else logging's own "Unable to configure logger" traceback, at django.setup().
    raise ImproperlyConfigured(
        f"SNAKE_LOG_LEVEL={SNAKE_LOG_LEVEL!r} is not a log level: set it to DEBUG, INFO, "
        "WARNING or ERROR, or unset it for INFO"
    )

# The language each browser asks for (Accept-Language), English when it asks for neither; no
# language in the URLs, which are a public contract. Spanish is the original tutorial's.
USE_I18N = True
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("es", "Español")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "snake": {
            "handlers": ["console"],
            "level": SNAKE_LOG_LEVEL,
            "propagate": False,  # daphne logs the root logger too: once is enough
        },
        # It logs every listener added at INFO: one line per viewer is noise.
        "django_eventstream": {"level": "WARNING"},
    },
}

# Third-party
# Serve static files straight from STATICFILES_DIRS: `make run` needs no collectstatic.
WHITENOISE_USE_FINDERS = True

# django-csp sends this with every page; snake/guards/security.py sends it with the event stream.
# Each exception is needed by htmx, as a real Chromium shows (tests/test_security.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        # htmx compiles hx-trigger filters (the key filter on the move forms) with Function().
        "script-src": [SELF, UNSAFE_EVAL],
        # Inline style attributes carry the board's size and the logo's position (which htmx
        # swaps and settles), and htmx injects a <style> for its request indicators.
        "style-src": [SELF, UNSAFE_INLINE],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# REDIS_URL: every worker's events reach every other worker's viewers through Redis pub/sub.
REDIS_URL = os.environ.get("REDIS_URL", "").strip()
if REDIS_URL:
    from redis.connection import parse_url

    # Connect timeout only: a read timeout would break the idle pub/sub listener. No retries:
    # redis-py retries a refused connect 3 times with a 1-10 s backoff, so while Redis was down
    # every move's publish took ~4 s, holding its board's lock (the listener reconnects itself).
    EVENTSTREAM_REDIS = {
        **parsed_url("REDIS_URL", REDIS_URL, parse_url, "redis://127.0.0.1:6379/0"),
        "socket_connect_timeout": 2,
        "retry": None,
    }

# The move limit's buckets (snake/guards/ratelimit.py): in Redis every worker shares them; else
# in this process. Short timeouts: a hung Redis must not hold moves up (they go through).
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

# GRIP_URL: a GRIP proxy (Pushpin) holds the event streams; events are published to it once.
# Both kept as settings so that snake/checks.py can say what is wrong with them, under names of
# our own: django-grip adds a second proxy from a setting named GRIP_URL, and every event then
# reached Pushpin's viewers twice.
SNAKE_GRIP_URL = os.environ.get("GRIP_URL", "")
SNAKE_GRIP_SIG_KEY = os.environ.get("GRIP_SIG_KEY", "")
# GRIP_STATS: Pushpin's stats sockets (its handler's stats_spec, ZeroMQ; comma-separated, one per
# edge), where the workers hear how many watch through it (snake/stream/pushpin_stats.py).
SNAKE_GRIP_STATS = os.environ.get("GRIP_STATS", "")
if SNAKE_GRIP_URL:
    MIDDLEWARE.insert(1, "django_grip.GripMiddleware")
    GRIP_PROXIES = [{"control_uri": SNAKE_GRIP_URL}]
    if SNAKE_GRIP_SIG_KEY:
        # Only requests signed with the proxy's sig_key count as proxied. Both names: django-grip
        # 3.5.2 reads entry["key"] even when "verify_key" is there (KeyError without it).
        GRIP_PROXIES[0]["key"] = GRIP_PROXIES[0]["verify_key"] = SNAKE_GRIP_SIG_KEY

# Ours
# Proxies whose X-Forwarded-For is believed (addresses or networks, comma-separated).
SNAKE_TRUSTED_PROXIES = [
    p.strip() for p in os.environ.get("SNAKE_TRUSTED_PROXIES", "").split(",") if p.strip()
]
# The board's geometry, in board pixels.
SNAKE_BOARD_WIDTH = env_int("SNAKE_BOARD_WIDTH", 1200)
SNAKE_BOARD_HEIGHT = env_int("SNAKE_BOARD_HEIGHT", 700)
SNAKE_LOGO_WIDTH = env_int("SNAKE_LOGO_WIDTH", 160)
SNAKE_LOGO_HEIGHT = env_int("SNAKE_LOGO_HEIGHT", 48)
SNAKE_START_X = env_int("SNAKE_START_X", 500)
SNAKE_START_Y = env_int("SNAKE_START_Y", 150)
SNAKE_STEP = env_int("SNAKE_STEP", 5)
# Abuse limits per client address; 0 turns one off (snake/guards/ratelimit.py, streamcap.py).
SNAKE_MOVES_PER_SECOND = env_int("SNAKE_MOVES_PER_SECOND", 20)
SNAKE_MOVES_BURST = env_int("SNAKE_MOVES_BURST", 40)
SNAKE_MAX_STREAMS_PER_IP = env_int("SNAKE_MAX_STREAMS_PER_IP", 100)
# A viewer that takes no write for this long is dropped (it reconnects from the current state):
# a client that stops reading must not hold server memory or a connection forever.
SNAKE_STUCK_VIEWER_SECONDS = env_int("SNAKE_STUCK_VIEWER_SECONDS", 30)
