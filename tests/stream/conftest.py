"""The engine's fixtures: a counter channel and a live uvicorn serving it, in this process; two
daphne workers on one Redis."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from channels.routing import URLRouter

from deploy.redis import Redis
from snake import stream
from snake.stream.routing import stream_path
from tests.live import Server, free_port
from tests.stream.counter import PREFIX, Counter


@pytest.fixture
def workers(tmp_path: Path, redis: Redis) -> Iterator[tuple[Server, Server]]:
    """Two daphne workers sharing one SQLite board state and one Redis (tests/conftest.py's)."""
    env = {"REDIS_URL": redis.url}
    a, b = Server(tmp_path, env), Server(tmp_path, env)
    a.start()
    b.start()
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture
def counter() -> Iterator[Counter]:
    owner = Counter(names=("count", "other"))
    stream.register(PREFIX, owner.snapshot)
    yield owner
    stream.unregister(PREFIX)


async def _not_found(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def counting_app() -> Any:
    """An ASGI app that streams `count-<name>` at /count/<name>/ and knows nothing else."""
    route = stream_path(r"^count/(?P<name>[a-z0-9-]+)/$", PREFIX + "{name}", _not_found)
    return URLRouter([route])


@pytest.fixture
def engine(counter: Counter) -> Iterator[str]:
    """A real uvicorn on a free loopback port serving the counter channels; yields its URL."""
    config = uvicorn.Config(
        counting_app(), host="127.0.0.1", port=free_port(), lifespan="off",
        log_level="warning", access_log=False, timeout_graceful_shutdown=1,
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)  # no signals off the main thread
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{config.port}"
    server.should_exit = True
    thread.join(10)


def counts(chunks: list[str] | str, name: str = "count") -> list[int]:
    """The counts of `name` in a stream's text, in order."""
    text = "".join(chunks)
    return [int(n) for n in re.findall(rf'<output id="{name}" data-n="(\d+)"', text)]
