"""Real servers for the tests: daphne or uvicorn on a free loopback port, an HTTP player,
and what skips the tests whose servers are not installed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from deploy import serve
from deploy.cluster import NO_LIMITS, missing_binaries

ROOT = Path(__file__).resolve().parent.parent
REDIS_MISSING = "SKIPPED REDIS TESTS: no redis-server (apt-get install redis-server; .ci/run does)"
CLUSTER_MISSING = f"SKIPPED CLUSTER TESTS: {'; '.join(missing_binaries())} (.ci/run installs them)"
# For the tests that start a cluster of their own; the `cluster` and `redis` fixtures
# (tests/conftest.py) skip by themselves.
needs_cluster = pytest.mark.skipif(bool(missing_binaries()), reason=CLUSTER_MISSING)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


class Server:
    """One ASGI server process (daphne unless told) serving snake.asgi on 127.0.0.1.

    Started by deploy/serve.py's command(), as `make run` starts it.
    """

    def __init__(
        self, workdir: Path, env: dict[str, str] | None = None, server: str = "daphne"
    ) -> None:
        self.workdir = workdir
        self.kind = server
        self.env = {
            **os.environ,
            "SNAKE_VAR_DIR": str(workdir),
            "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
            "PYTHONUNBUFFERED": "1",
            # The tests fire many moves and streams from 127.0.0.1; tests/test_ratelimit.py and
            # tests/test_streamcap.py pass their own limits here.
            **NO_LIMITS,
            **(env or {}),
        }
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
            cwd=ROOT,
            env=self.env,
            check=True,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.log = open(self.workdir / f"{self.kind}-{self.port}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            serve.command(self.kind, self.port), cwd=ROOT, env=self.env, stdout=self.log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for_port(self.port, self.proc)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def logs(self) -> str:
        return (self.workdir / f"{self.kind}-{self.port}.log").read_text(errors="replace")


class Player:
    """An HTTP client that plays like a script: GET the page for the CSRF cookie, then POST."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30)
        self.http.get("/").raise_for_status()
        self.token = self.http.cookies["csrftoken"]

    def move(self, slug: str, direction: str, **headers: str) -> httpx.Response:
        return self.http.post(
            f"/b/{slug}/move",
            data={"direction": direction},
            headers={"X-CSRFToken": self.token, "Accept": "application/json", **headers},
        )

    def state(self, slug: str) -> dict:
        return self.http.get(f"/b/{slug}/state").json()

    def board(self, slug: str) -> dict:
        """The board's own part of its state: all but `viewers`, which counts who watches."""
        state = self.state(slug)
        assert isinstance(state.pop("viewers"), int)
        return state

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Player:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
