"""A Grip-Sig header alone never routes a stream around the consumer and its stream cap.

Against real servers: with GRIP off, and with GRIP on and a signature made with the wrong key,
a stream carrying the header is the consumer's, counted under the cap, with no OS thread of its
own; only one signed with GRIP_SIG_KEY gets Django's hold. Pushpin itself signing and holding
real streams is tests/test_cluster.py's test_pushpin_holds_the_streams.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live import Server, free_port
from tests.sse import SSEClient
from tests.stream.test_grip import KEY, signed

CAP = 20


def threads(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Threads:")).split()[1])


def start(request: pytest.FixtureRequest, tmp: pytest.TempPathFactory, env: dict) -> Server:
    server = Server(tmp.mktemp("grip"), env={"SNAKE_MAX_STREAMS_PER_IP": str(CAP), **env},
                    server=request.param)  # fmt: skip
    server.start()
    request.addfinalizer(server.stop)
    return server


@pytest.fixture(scope="module", params=["daphne", "uvicorn"])
def grip_off(request: pytest.FixtureRequest, tmp_path_factory) -> Server:
    return start(request, tmp_path_factory, {})


@pytest.fixture(scope="module", params=["daphne", "uvicorn"])
def grip_on(request: pytest.FixtureRequest, tmp_path_factory) -> Server:
    # Nothing listens at GRIP_URL: publishes fail (logged), which these tests never need.
    env = {"GRIP_URL": f"http://127.0.0.1:{free_port()}", "GRIP_SIG_KEY": KEY}
    return start(request, tmp_path_factory, env)


@pytest.fixture
def opened() -> Iterator[list[SSEClient]]:
    streams: list[SSEClient] = []
    yield streams
    for viewer in streams:
        viewer.close()


def open_streams(server: Server, slug: str, sig: str, count: int, into: list) -> list[int]:
    """Open `count` streams with a Grip-Sig; return their statuses once each has opened."""
    for _ in range(count):
        viewer = SSEClient(server.url, f"/b/{slug}/events/", headers={"Grip-Sig": sig})
        into.append(viewer)
        if viewer.status == 200:
            viewer.wait_for(lambda ps: len(ps) >= 1)
    return [viewer.status for viewer in into[-count:]]


def test_a_forged_grip_sig_is_an_ordinary_stream_when_grip_is_off(grip_off, slug, opened) -> None:
    before = threads(grip_off.proc.pid)
    assert open_streams(grip_off, slug, "forged", CAP, opened) == [200] * CAP
    assert threads(grip_off.proc.pid) - before < 10  # the consumer's: no thread per stream
    assert open_streams(grip_off, slug, "forged", 1, opened) == [429]


def test_a_grip_sig_made_with_another_key_is_an_ordinary_stream(grip_on, slug, opened) -> None:
    wrong = signed(key="not-the-proxy-s-key-though-just-as-long-0123456789")
    assert open_streams(grip_on, slug, wrong, CAP, opened) == [200] * CAP
    assert open_streams(grip_on, slug, wrong, 1, opened) == [429]


def test_only_a_grip_sig_made_with_the_key_gets_the_hold(grip_on, slug) -> None:
    held = httpx.get(f"{grip_on.url}/b/{slug}/events/", headers={"Grip-Sig": signed()})
    assert held.status_code == 200
    assert held.headers["Grip-Hold"] == "stream"
    assert held.headers["Grip-Channel"].startswith(f"events-board-{slug}")
    assert "event: position" in held.text  # the opening, for the proxy to send first
    plain = httpx.get(f"{grip_on.url}/b/{slug}/state")
    assert "Grip-Hold" not in plain.headers
