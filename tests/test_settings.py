"""Settings from the environment: loopback defaults, and DJANGO_ENV=production's requirements."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.core.management.utils import get_random_secret_key

from tests.live import ROOT, Server
from tests.sse import SSEClient

# Variables the settings read that this module sets itself: the caller's must not leak in.
OURS = ("DJANGO_ENV", "DJANGO_DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS",
        "SECURE_PROXY_SSL_HEADER", "SECURE_HSTS_SECONDS", "HOST")  # fmt: skip
SHOWN = ("DEBUG", "ALLOWED_HOSTS", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE",
         "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS",
         "SECURE_PROXY_SSL_HEADER", "CSRF_TRUSTED_ORIGINS")  # fmt: skip
SHOW = (
    "import json, django; from django.conf import settings; django.setup(); "
    f"print(json.dumps({{name: getattr(settings, name) for name in {SHOWN!r}}}))"
)


def environment(var_dir: Path, **env: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in OURS}
    return {
        **base,
        "SNAKE_VAR_DIR": str(var_dir),
        "DJANGO_SETTINGS_MODULE": "snake.settings",
        **env,
    }


def run(var_dir: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv], cwd=ROOT, env=environment(var_dir, **env),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def settings_with(var_dir: Path, **env: str) -> dict:
    done = run(var_dir, "-c", SHOW, **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def production(**env: str) -> dict[str, str]:
    return {"DJANGO_ENV": "production", "SECRET_KEY": get_random_secret_key(),
            "ALLOWED_HOSTS": "snake.example.com", **env}  # fmt: skip


def test_the_default_is_plain_http_on_loopback_with_debug_off(tmp_path: Path) -> None:
    shown = settings_with(tmp_path)
    assert shown["DEBUG"] is False
    assert shown["ALLOWED_HOSTS"] == ["localhost", "127.0.0.1", "[::1]", "127.0.0.1"]
    assert shown["SECURE_SSL_REDIRECT"] is False
    assert shown["SECURE_HSTS_SECONDS"] == 0
    assert shown["CSRF_COOKIE_SECURE"] is False
    assert shown["SECURE_PROXY_SSL_HEADER"] is None
    # Nothing to set for `make run`: the dev key is made once under SNAKE_VAR_DIR.
    assert (tmp_path / "secret_key").exists()


def test_django_debug_1_turns_debug_on(tmp_path: Path) -> None:
    assert settings_with(tmp_path, DJANGO_DEBUG="1")["DEBUG"] is True
    assert settings_with(tmp_path, DJANGO_DEBUG="0")["DEBUG"] is False


def test_allowed_hosts_and_trusted_origins_come_from_the_environment(tmp_path: Path) -> None:
    shown = settings_with(
        tmp_path, ALLOWED_HOSTS="a.example, b.example", CSRF_TRUSTED_ORIGINS="https://a.example"
    )
    assert shown["ALLOWED_HOSTS"] == ["a.example", "b.example"]
    assert shown["CSRF_TRUSTED_ORIGINS"] == ["https://a.example"]


@pytest.mark.parametrize(
    ("missing", "fix"),
    [("SECRET_KEY", "get_random_secret_key"), ("ALLOWED_HOSTS", "host names, comma-separated")],
)
def test_production_refuses_to_start_without(tmp_path: Path, missing: str, fix: str) -> None:
    for value in (None, ""):
        env = production()
        if value is None:
            del env[missing]
        else:
            env[missing] = value
        done = run(tmp_path, "manage.py", "check", **env)
        assert done.returncode != 0
        assert "ImproperlyConfigured" in done.stderr
        assert f"DJANGO_ENV=production needs {missing}: set it to" in done.stderr
        assert fix in done.stderr
    assert not (tmp_path / "secret_key").exists()  # no dev key made up in production


def test_production_refuses_debug_and_an_unknown_env(tmp_path: Path) -> None:
    done = run(tmp_path, "manage.py", "check", **production(DJANGO_DEBUG="1"))
    assert done.returncode != 0 and "unset DJANGO_DEBUG" in done.stderr
    # A typo must not fall back to development quietly.
    done = run(tmp_path, "manage.py", "check", **production(DJANGO_ENV="prod"))
    assert done.returncode != 0 and "DJANGO_ENV='prod': set DJANGO_ENV=production" in done.stderr


def test_production_passes_check_deploy_with_no_warning(tmp_path: Path) -> None:
    done = run(
        tmp_path, "manage.py", "check", "--deploy", "--fail-level", "WARNING", **production()
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout
    assert "WARNING" not in done.stdout + done.stderr
    shown = settings_with(tmp_path, **production())
    assert shown["SECURE_SSL_REDIRECT"] is True
    assert shown["SESSION_COOKIE_SECURE"] is shown["CSRF_COOKIE_SECURE"] is True
    assert shown["SECURE_HSTS_SECONDS"] == 31536000
    assert shown["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert shown["SECURE_PROXY_SSL_HEADER"] is None  # believed only when asked to


def test_the_proxy_ssl_header_is_named_by_the_environment(tmp_path: Path) -> None:
    shown = settings_with(tmp_path, **production(SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto"))
    assert shown["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("SNAKE_STEP", "five", "SNAKE_STEP='five' is not a whole number: set it to one, e.g. "
         "SNAKE_STEP=5 (the default), or unset it"),
        ("SNAKE_MAX_STREAMS_PER_IP", "1e3", "SNAKE_MAX_STREAMS_PER_IP='1e3' is not a whole"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL='localhost:6379' cannot be parsed (Redis URL "
         "must specify one of the following schemes"),
        ("DATABASE_URL", "postgress://h/db", "DATABASE_URL='postgress://h/db' cannot be parsed"),
        ("SNAKE_LOG_LEVEL", "loud", "SNAKE_LOG_LEVEL='loud' is not a log level: set it to DEBUG"),
    ],
)  # fmt: skip
def test_a_value_that_cannot_be_read_is_refused_naming_it(
    tmp_path: Path, name: str, value: str, says: str
) -> None:
    done = run(tmp_path, "manage.py", "check", **{name: value})
    assert done.returncode != 0
    assert f"ImproperlyConfigured: {says}" in done.stderr
    assert "or unset it" in done.stderr.splitlines()[-1]  # the fix, on the line that is read
    # The library's own exception is not chained on: ours is the whole story.
    assert "above exception" not in done.stderr


def test_an_empty_database_url_means_the_default(tmp_path: Path) -> None:
    # As every other variable: .env.example's `DATABASE_URL=` must not break the settings.
    done = run(tmp_path, "manage.py", "check", DATABASE_URL="")
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def behind_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A production daphne as it runs behind a TLS-terminating proxy on this machine."""
    workdir = tmp_path_factory.mktemp("production")
    env = production(ALLOWED_HOSTS="127.0.0.1", SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto")
    daphne = Server(workdir, env={**dict.fromkeys(OURS, ""), **env})
    daphne.start()
    yield daphne
    daphne.stop()


def test_production_behind_a_tls_proxy_redirects_plain_http_only(behind_tls: Server) -> None:
    url, https = f"{behind_tls.url}/b/tls/", {"X-Forwarded-Proto": "https"}
    plain = httpx.get(url)
    assert plain.status_code == 301
    assert plain.headers["Location"] == f"https://127.0.0.1:{behind_tls.port}/b/tls/"
    page = httpx.get(url, headers=https)
    assert page.status_code == 200
    assert page.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "Secure" in page.headers["Set-Cookie"]
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


def test_production_moves_and_the_stream_work_behind_a_tls_proxy(behind_tls: Server) -> None:
    # The stream is served outside Django's middleware and never redirected: the page asks for
    # it on its own origin, so it is HTTPS whenever the page is.
    viewer = SSEClient(behind_tls.url, "/b/tls-move/events/")
    try:
        assert viewer.status == 200
        assert "frame-ancestors 'none'" in viewer.headers["Content-Security-Policy"]
        viewer.wait_seq(0)
        page = httpx.get(f"{behind_tls.url}/b/tls-move/", headers={"X-Forwarded-Proto": "https"})
        token = page.cookies["csrftoken"]
        # The Secure cookie is sent back by hand: httpx keeps it from a plain-http URL.
        move = httpx.post(
            f"{behind_tls.url}/b/tls-move/move",
            data={"direction": "d"},
            headers={
                "X-Forwarded-Proto": "https",
                "Origin": f"https://127.0.0.1:{behind_tls.port}",
                "Cookie": f"csrftoken={token}",
                "X-CSRFToken": token,
                "Accept": "application/json",
            },
        )
        assert move.status_code == 200, move.text
        assert viewer.wait_seq(1)["x"] == 505
    finally:
        viewer.close()


def test_the_language_comes_from_the_browser_before_any_answer_and_never_a_session() -> None:
    from django.conf import settings

    middleware = settings.MIDDLEWARE
    locale = middleware.index("snake.language.LanguageMiddleware")
    assert middleware.index("whitenoise.middleware.WhiteNoiseMiddleware") < locale
    assert locale < middleware.index("django.middleware.common.CommonMiddleware")
    assert locale < middleware.index("snake.guards.charset.BodyCharsetMiddleware")
    assert "django.contrib.sessions.middleware.SessionMiddleware" not in middleware
    assert [code for code, _ in settings.LANGUAGES] == ["en", "es"]
    assert settings.LANGUAGE_CODE == "en" and settings.USE_I18N
