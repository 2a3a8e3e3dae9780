"""System checks (`manage.py check`, and snake/asgi.py before serving): refuse bad settings.

settings.py already refuses what it cannot even read (a non-integer, an unparseable REDIS_URL
or DATABASE_URL); these catch values that read fine but cannot work, and settings given some
other way (override_settings, another settings module).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, register
from django.core.checks import Warning as CheckWarning
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, SystemCheckError
from redis.connection import parse_url

from snake.guards.proxies import parse_networks

TAG = "snake"
# 0 turns these off (snake/guards/ratelimit.py, streamcap.py); below 0 means nothing.
LIMITS = ("SNAKE_MOVES_PER_SECOND", "SNAKE_MOVES_BURST", "SNAKE_MAX_STREAMS_PER_IP")

# What Django passes a check and wants back.
Apps = Sequence[AppConfig] | None
Messages = list[CheckMessage]


@register(TAG)
def logo_fits(app_configs: Apps = None, **kwargs: Any) -> Messages:
    errors: Messages = []
    for board, logo in (("SNAKE_BOARD_WIDTH", "SNAKE_LOGO_WIDTH"),
                        ("SNAKE_BOARD_HEIGHT", "SNAKE_LOGO_HEIGHT")):  # fmt: skip
        board_size, logo_size = getattr(settings, board), getattr(settings, logo)
        if not 0 < logo_size <= board_size:
            errors.append(Error(
                f"{logo}={logo_size} does not fit {board}={board_size}",
                hint=f"set {logo} between 1 and {board}, or make the board larger",
                id="snake.E001",
            ))  # fmt: skip
    return errors


@register(TAG)
def step_moves(app_configs: Apps = None, **kwargs: Any) -> Messages:
    if settings.SNAKE_STEP > 0:
        return []
    return [Error(
        f"SNAKE_STEP={settings.SNAKE_STEP}: a move would not move the logo, or move it backwards",
        hint="set SNAKE_STEP to the pixels per move, 1 or more (default 5)",
        id="snake.E002",
    )]  # fmt: skip


@register(TAG)
def start_inside(app_configs: Apps = None, **kwargs: Any) -> Messages:
    errors: Messages = []
    for axis, start, board, logo in (
        ("x", "SNAKE_START_X", "SNAKE_BOARD_WIDTH", "SNAKE_LOGO_WIDTH"),
        ("y", "SNAKE_START_Y", "SNAKE_BOARD_HEIGHT", "SNAKE_LOGO_HEIGHT"),
    ):
        value, wall = getattr(settings, start), getattr(settings, board) - getattr(settings, logo)
        # A logo that does not fit is E001's; no start position could be inside then.
        if wall >= 0 and not 0 <= value <= wall:
            errors.append(Error(
                f"{start}={value} puts the logo outside the walls: {axis} runs from 0 to {wall} "
                f"({board} - {logo})",
                hint=f"set {start} between 0 and {wall}",
                id="snake.E003",
            ))  # fmt: skip
    return errors


@register(TAG)
def limits_not_negative(app_configs: Apps = None, **kwargs: Any) -> Messages:
    return [
        Error(
            f"{name}={getattr(settings, name)} is negative",
            hint=f"set {name} to 1 or more, or to 0 to turn the limit off",
            id="snake.E004",
        )
        for name in LIMITS
        if getattr(settings, name) < 0
    ]


@register(TAG)
def stuck_viewers_dropped(app_configs: Apps = None, **kwargs: Any) -> Messages:
    seconds = settings.SNAKE_STUCK_VIEWER_SECONDS
    if seconds > 0:
        return []
    # Not an "off" switch like the limits: 0 would drop a viewer at its first slow write.
    return [Error(
        f"SNAKE_STUCK_VIEWER_SECONDS={seconds}: a viewer must get some time to take a write",
        hint="set SNAKE_STUCK_VIEWER_SECONDS to 1 or more (default 30); there is no off: a "
        "client that stops reading would hold memory and a connection forever",
        id="snake.E005",
    )]  # fmt: skip


def parse_grip_url(url: str) -> None:
    parts = urlsplit(url)
    parts.port  # noqa: B018 -- raises ValueError on a port that is not a number
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("it must be an http:// or https:// URL with a host")


def parse_zmq_specs(specs: str) -> None:
    for spec in specs.split(","):
        scheme, _, rest = spec.strip().partition("://")
        if scheme == "ipc" and rest.startswith("/"):
            continue
        if scheme != "tcp":
            raise ValueError(f"{spec.strip()!r} is neither tcp://HOST:PORT nor ipc:///PATH")
        parse_grip_url(f"http://{rest}")
        if urlsplit(f"http://{rest}").port is None:
            raise ValueError(f"{spec.strip()!r} names no port")


# environment variable -> (the setting that holds it, its parser, an example, the check's id)
URLS: dict[str, tuple[str, Callable[[str], object], str, str]] = {
    "REDIS_URL": ("REDIS_URL", parse_url, "redis://127.0.0.1:6379/0", "snake.E006"),
    "GRIP_URL": (
        "SNAKE_GRIP_URL",
        parse_grip_url,
        "http://127.0.0.1:5561 (Pushpin's publish port)",
        "snake.E007",
    ),
    "GRIP_STATS": (
        "SNAKE_GRIP_STATS",
        parse_zmq_specs,
        "tcp://127.0.0.1:5564 (Pushpin's stats_spec; comma-separated for several)",
        "snake.E011",
    ),
    "DATABASE_URL": (
        "DATABASE_URL",
        dj_database_url.parse,
        "postgres://USER:PASSWORD@HOST/NAME",
        "snake.E008",
    ),
}


@register(TAG)
def urls_parse(app_configs: Apps = None, **kwargs: Any) -> Messages:
    errors: Messages = []
    for name, (setting, parse, example, check_id) in URLS.items():
        url = getattr(settings, setting, "")
        try:
            if url:
                parse(url)
        except ValueError as exc:
            errors.append(Error(
                f"{name}={url!r} cannot be parsed: {exc}",
                hint=f"set it to a URL such as {example}, or unset it",
                id=check_id,
            ))  # fmt: skip
    return errors


# The board's SQL (snake/board.py) needs UPDATE ... RETURNING and INSERT ... ON CONFLICT.
DATABASE_ENGINES = ("django.db.backends.sqlite3", "django.db.backends.postgresql")


@register(TAG)
def database_supported(app_configs: Apps = None, **kwargs: Any) -> Messages:
    try:
        engine = dj_database_url.parse(settings.DATABASE_URL)["ENGINE"]
    except ValueError:
        return []  # E008 says why
    if engine in DATABASE_ENGINES:
        return []
    return [Error(
        f"DATABASE_URL names {engine}, which snake does not support",
        hint="use SQLite (unset DATABASE_URL) or PostgreSQL (postgres://USER:PASSWORD@HOST/NAME)",
        id="snake.E010",
    )]  # fmt: skip


@register(TAG)
def trusted_proxies_parse(app_configs: Apps = None, **kwargs: Any) -> Messages:
    try:
        parse_networks(settings.SNAKE_TRUSTED_PROXIES)
    except ImproperlyConfigured as exc:
        message, _, hint = str(exc).partition("; ")
        return [Error(message, hint=hint, id="snake.E009")]
    return []


@register(TAG)
def grip_signed(app_configs: Apps = None, **kwargs: Any) -> Messages:
    url, key = settings.SNAKE_GRIP_URL, settings.SNAKE_GRIP_SIG_KEY
    if not url or key:
        return []
    # Only a warning: streams still work, served by the workers through the proxy.
    return [CheckWarning(
        "GRIP_URL is set without GRIP_SIG_KEY: no stream request can be verified as the "
        "proxy's, so it never holds a stream and each one stays open on a worker",
        hint="set GRIP_SIG_KEY to the proxy's sig_key (Pushpin's pushpin.conf), or unset GRIP_URL",
        id="snake.W001",
    )]  # fmt: skip


@register(TAG)
def grip_stats_counted(app_configs: Apps = None, **kwargs: Any) -> Messages:
    if not settings.SNAKE_GRIP_STATS or settings.REDIS_URL:
        return []
    # The workers add Pushpin's count up in Redis (snake.stream.census); without it, nowhere.
    return [CheckWarning(
        "GRIP_STATS is set without REDIS_URL: the viewers Pushpin holds are not counted",
        hint="set REDIS_URL (the workers count viewers together in Redis), or unset GRIP_STATS",
        id="snake.W002",
    )]  # fmt: skip


def refuse_bad_settings() -> None:
    """Run the snake checks as `manage.py check` does: print what they find, exit on an error."""
    command = BaseCommand()
    try:
        command.check(tags=[TAG])
    except SystemCheckError as exc:
        command.stderr.write(str(exc))
        sys.exit(1)
