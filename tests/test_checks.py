"""The snake system checks: each fires on its bad value, none on the defaults; servers refuse."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.checks import run_checks
from django.test import override_settings

from deploy import serve
from snake.checks import TAG, refuse_bad_settings
from tests.live import ROOT, free_port

BAD: list[tuple[str, dict[str, Any], str]] = [
    ("snake.E001", {"SNAKE_LOGO_WIDTH": 1201}, "SNAKE_LOGO_WIDTH=1201 does not fit"),
    ("snake.E001", {"SNAKE_BOARD_HEIGHT": 47}, "SNAKE_LOGO_HEIGHT=48 does not fit"),
    ("snake.E001", {"SNAKE_LOGO_WIDTH": 0}, "set SNAKE_LOGO_WIDTH between 1 and"),
    ("snake.E002", {"SNAKE_STEP": 0}, "set SNAKE_STEP to the pixels per move"),
    ("snake.E002", {"SNAKE_STEP": -5}, "SNAKE_STEP=-5"),
    ("snake.E003", {"SNAKE_START_X": 1041}, "set SNAKE_START_X between 0 and 1040"),
    ("snake.E003", {"SNAKE_START_Y": -1}, "set SNAKE_START_Y between 0 and 652"),
    ("snake.E004", {"SNAKE_MOVES_PER_SECOND": -1}, "SNAKE_MOVES_PER_SECOND=-1 is negative"),
    ("snake.E004", {"SNAKE_MOVES_BURST": -1}, "or to 0 to turn the limit off"),
    ("snake.E004", {"SNAKE_MAX_STREAMS_PER_IP": -1}, "SNAKE_MAX_STREAMS_PER_IP=-1"),
    ("snake.E005", {"SNAKE_STUCK_VIEWER_SECONDS": 0}, "set SNAKE_STUCK_VIEWER_SECONDS to 1"),
    ("snake.E006", {"REDIS_URL": "localhost:6379"}, "such as redis://127.0.0.1:6379/0"),
    (
        "snake.E007",
        {"SNAKE_GRIP_URL": "127.0.0.1:5561", "SNAKE_GRIP_SIG_KEY": "k"},
        "http://127.0.0.1:5561",
    ),
    (
        "snake.E007",
        {"SNAKE_GRIP_URL": "http://127.0.0.1:pp", "SNAKE_GRIP_SIG_KEY": "k"},
        "cannot be parsed",
    ),
    ("snake.E008", {"DATABASE_URL": "postgress://h/db"}, "such as postgres://"),
    ("snake.E009", {"SNAKE_TRUSTED_PROXIES": ["localhost"]}, "e.g. 127.0.0.1,::1"),
    ("snake.E010", {"DATABASE_URL": "mysql://u:p@h/db"}, "or PostgreSQL (postgres://"),
    *(
        ("snake.E011", {"SNAKE_GRIP_STATS": stats, "REDIS_URL": "redis://h:1/2"}, says)
        for stats, says in [
            ("127.0.0.1:5564", "such as tcp://127.0.0.1:5564"),
            ("tcp://127.0.0.1", "names no port"),
            ("ipc://run/stats", "nor ipc:///PATH"),
        ]
    ),
    ("snake.W001", {"SNAKE_GRIP_URL": "http://127.0.0.1:5561"}, "set GRIP_SIG_KEY to the proxy's"),
    ("snake.W002", {"SNAKE_GRIP_STATS": "tcp://127.0.0.1:5564"}, "set REDIS_URL"),
]
# Values at the edge that must pass: 0 turns a limit off; the logo may touch every wall.
GOOD: list[dict[str, Any]] = [
    {"SNAKE_MOVES_PER_SECOND": 0, "SNAKE_MOVES_BURST": 0, "SNAKE_MAX_STREAMS_PER_IP": 0},
    {"SNAKE_START_X": 0, "SNAKE_START_Y": 0},
    {"SNAKE_START_X": 1040, "SNAKE_START_Y": 652},
    {"SNAKE_LOGO_WIDTH": 1200, "SNAKE_LOGO_HEIGHT": 700, "SNAKE_START_X": 0, "SNAKE_START_Y": 0},
    {"SNAKE_STEP": 1, "SNAKE_STUCK_VIEWER_SECONDS": 1},
    {
        "SNAKE_GRIP_URL": "http://127.0.0.1:5561",
        "SNAKE_GRIP_SIG_KEY": "k",
        "REDIS_URL": "redis://h:1/2",
        "SNAKE_GRIP_STATS": "tcp://127.0.0.1:5564, ipc:///tmp/pushpin-stats",
    },
    {"DATABASE_URL": "postgres://u:p@h:5432/db", "SNAKE_TRUSTED_PROXIES": ["10.0.0.0/8"]},
]


def found(**overrides: Any) -> list[tuple[str, str]]:
    with override_settings(**overrides):
        return [(m.id, f"{m.msg} {m.hint}") for m in run_checks(tags=[TAG])]


def test_the_defaults_pass() -> None:
    assert found() == []


@pytest.mark.parametrize(("check_id", "overrides", "says"), BAD)
def test_a_bad_value_fails_its_check_saying_the_fix(
    check_id: str, overrides: dict[str, Any], says: str
) -> None:
    messages = found(**overrides)
    assert [check for check, _ in messages] == [check_id]
    assert says in messages[0][1]


@pytest.mark.parametrize("overrides", GOOD)
def test_edge_values_pass(overrides: dict[str, Any]) -> None:
    assert found(**overrides) == []


def test_refusing_exits_on_an_error_and_only_prints_a_warning(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with override_settings(SNAKE_GRIP_URL="http://127.0.0.1:5561", SNAKE_GRIP_SIG_KEY=""):
        refuse_bad_settings()  # a warning lets the server start
    assert "(snake.W001)" in capsys.readouterr().err
    with override_settings(SNAKE_STEP=0), pytest.raises(SystemExit) as exited:
        refuse_bad_settings()
    assert exited.value.code == 1
    assert "(snake.E002)" in capsys.readouterr().err


def never_listens(proc: subprocess.Popen, port: int, timeout: float = 60) -> None:
    """Wait for `proc` to exit, failing if anything ever answers on `port` meanwhile."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, "the server listened"
        time.sleep(0.05)


@pytest.mark.parametrize("server", serve.SERVERS)
def test_a_server_refuses_to_start_on_a_bad_setting(server: str, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "SNAKE_VAR_DIR": str(tmp_path), "SNAKE_STEP": "0",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}  # fmt: skip
    proc = subprocess.Popen(
        serve.command(server, port), cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        never_listens(proc, port)
    finally:
        proc.kill()  # a no-op once it exited; reaps it when it listened or hung
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode > 0  # exited by itself: killed would be negative
    assert "(snake.E002) SNAKE_STEP=0" in stderr
    assert "HINT: set SNAKE_STEP to the pixels per move" in stderr
