"""The move body cap: the ASGI wrapper on its own, then against live servers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx

from snake.asgi import MOVE_PATH
from snake.guards.bodylimit import MAX_MOVE_BODY, cap_move_bodies
from tests.live import Player


def run(scope: dict, messages: list[dict]) -> tuple[list[dict], list[bytes] | None]:
    """Call the wrapper around an app that reads the whole body and answers 200.

    Returns what was sent, and the body chunks the app read (None: the app was never called).
    """
    incoming = list(messages)
    sent: list[dict] = []
    read: list[bytes] = []
    called = False

    async def app(scope: dict, receive, send) -> None:
        nonlocal called
        called = True
        while True:
            message = await receive()
            read.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive() -> dict:
        assert incoming, "read past the end of the body"
        return incoming.pop(0)

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(cap_move_bodies(app, MOVE_PATH)(scope, receive, send))
    return sent, (read if called else None)


def move_scope(length: int | None = None, accept: str = "*/*") -> dict:
    headers = [(b"accept", accept.encode())]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http", "method": "POST", "path": "/b/main/move", "headers": headers}


def body(*chunks: bytes) -> list[dict]:
    return [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]


def test_a_body_within_the_cap_reaches_the_app_unchanged() -> None:
    sent, read = run(move_scope(None), body(b"direction=", b"d", b""))
    assert sent[0]["status"] == 200
    assert b"".join(read) == b"direction=d"


def test_a_declared_length_over_the_cap_is_413_before_reading() -> None:
    sent, read = run(move_scope(MAX_MOVE_BODY + 1), [])  # receive() would fail the test
    assert read is None
    assert sent[0]["status"] == 413
    assert (b"connection", b"close") in sent[0]["headers"]


def test_a_body_without_length_is_413_once_it_passes_the_cap() -> None:
    chunks = [b"x" * 600, b"x" * 600, b"never read"]
    sent, read = run(move_scope(None, accept="application/json"), body(*chunks))
    assert read is None
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"]) == {
        "error": f"a move's body is at most {MAX_MOVE_BODY} bytes"
    }


def test_other_paths_are_not_touched() -> None:
    scope = {**move_scope(5000), "path": "/b/main/state", "method": "GET"}
    sent, read = run(scope, body(b"y" * 5000))
    assert sent[0]["status"] == 200 and b"".join(read) == b"y" * 5000


def chunked(size: int) -> Iterator[bytes]:
    for _ in range(size // 512):
        yield b"d" * 512


def test_live_413_for_a_long_body_with_or_without_length(server, slug) -> None:
    url = f"{server.url}/b/{slug}/move"
    big = b"direction=" + b"d" * 4000
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert httpx.post(url, content=big, headers=form).status_code == 413
    as_json = httpx.post(url, content=big, headers={**form, "Accept": "application/json"})
    assert as_json.status_code == 413 and "at most" in as_json.json()["error"]
    streamed = httpx.post(url, content=chunked(8192), headers=form)  # Transfer-Encoding: chunked
    assert streamed.status_code == 413


def test_live_an_over_long_direction_in_a_small_body_stays_400(player: Player, slug) -> None:
    response = player.move(slug, "d" * 500)
    assert response.status_code == 400
    assert "direction must be one of" in response.json()["error"]
    assert player.move(slug, "d").json()["seq"] == 1
