"""The move body cap: the ASGI wrapper on its own, then against live servers."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from django.test import Client

from snake.asgi import MOVE_PATH
from snake.guards.bodylimit import MAX_DRAINED, MAX_MOVE_BODY, cap_move_bodies
from snake.guards.security import security_headers
from snake.models import Board
from tests.asgi_client import AsgiClient
from tests.live import Player


def run(scope: dict, messages: list[dict]) -> tuple[list[dict], list[bytes] | None]:
    """Call the wrapper around an app that reads the whole body and answers 200.

    Returns what was sent, and the body chunks the app read (None: the app was never called);
    `messages` keeps what nobody received.
    """
    incoming = messages
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


def ended(sent: list[dict]) -> bool:
    """Whether the response was sent whole: a start, then bodies up to one without more_body."""
    bodies = sent[1:]
    return sent[0]["type"] == "http.response.start" and [
        m.get("more_body", False) for m in bodies
    ] == [True] * (len(bodies) - 1) + [False]


def test_a_declared_length_over_the_cap_is_413_and_the_body_is_drained() -> None:
    messages = body(b"x" * 2000, b"x" * 2000)
    sent, read = run(move_scope(4000), messages)
    assert read is None  # the app never ran
    assert sent[0]["status"] == 413 and ended(sent)
    assert (b"connection", b"close") in sent[0]["headers"]
    assert messages == []  # read and thrown away, so the client can read its answer
    # The answer went out before the drain: a client waiting for "100 Continue" gets it.
    assert sent[1]["body"].startswith(b"a move's body is at most")


def test_a_declared_length_over_the_drain_limit_is_413_before_reading() -> None:
    sent, read = run(move_scope(MAX_DRAINED + 1), [])  # receive() would fail the test
    assert read is None
    assert sent[0]["status"] == 413 and ended(sent)


def test_a_body_without_length_is_413_once_it_passes_the_cap() -> None:
    messages = body(b"x" * 600, b"x" * 600, b"drained")
    sent, read = run(move_scope(None, accept="application/json"), messages)
    assert read is None and messages == []
    assert sent[0]["status"] == 413 and ended(sent)
    assert json.loads(sent[1]["body"]) == {
        "error": f"a move's body is at most {MAX_MOVE_BODY} bytes"
    }
    assert (b"content-type", b"application/json") in sent[0]["headers"]


def test_the_drain_stops_past_its_limit_and_at_a_disconnect() -> None:
    mib = b"x" * (1024 * 1024)
    endless = [{"type": "http.request", "body": mib, "more_body": True} for _ in range(12)]
    sent, _ = run(move_scope(None), endless)
    assert ended(sent)
    assert len(endless) == 12 - (MAX_DRAINED // len(mib) + 1)  # 8 MiB and the chunk past it
    gone = [*body(b"x" * 2000, b"x")[:1], {"type": "http.disconnect"}, {"never": "read"}]
    sent, _ = run(move_scope(None), gone)
    assert ended(sent) and gone == [{"never": "read"}]


def test_the_413_carries_every_security_header_of_a_page() -> None:
    sent, _ = run(move_scope(MAX_DRAINED + 1), [])
    assert set(security_headers()) <= set(sent[0]["headers"])
    assert (b"content-type", b"text/plain; charset=utf-8") in sent[0]["headers"]


def test_other_paths_are_not_touched() -> None:
    scope = {**move_scope(5000), "path": "/b/main/state", "method": "GET"}
    sent, read = run(scope, body(b"y" * 5000))
    assert sent[0]["status"] == 200 and b"".join(read) == b"y" * 5000


@pytest.mark.django_db(transaction=True)
def test_the_application_caps_a_move_before_django_reads_it() -> None:
    # Through the ASGI application only: the cap wraps it, and Django's test client, which
    # calls Django's handler, passes no cap (its view answers the same move with a 400).
    big = {"direction": "d" * 5000}
    answer = AsgiClient().post("/b/cap/move", big, HTTP_ACCEPT="application/json")
    assert answer.status_code == 413 and answer["Connection"] == "close"
    assert answer.json() == {"error": f"a move's body is at most {MAX_MOVE_BODY} bytes"}
    assert {(k.encode(), v.encode()) for k, v in answer.items()} >= set(security_headers())
    assert Client().post("/b/cap/move", big).status_code == 400
    assert not Board.objects.exists()


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


def send_then_read(
    url: str, path: str, body: bytes, **headers: str
) -> tuple[http.client.HTTPResponse, bytes]:
    """POST `body` whole on a raw socket, as a client that reads only after sending does."""
    parts = urlsplit(url)
    head = {"Host": parts.netloc, "Content-Type": "application/x-www-form-urlencoded", **headers}
    request = f"POST {path} HTTP/1.1\r\n"
    request += "".join(f"{name}: {value}\r\n" for name, value in head.items()) + "\r\n"
    with socket.create_connection((parts.hostname, parts.port), timeout=60) as sock:
        sock.sendall(request.encode() + body)  # a reset here: the server closed unread
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        return answer, answer.read()  # Content-Length's worth: a short read raises


def test_live_a_client_that_sends_3_mb_before_reading_reads_the_413(server, slug) -> None:
    big = b"direction=" + b"d" * (3 * 1024 * 1024)
    step = 64 * 1024
    pieces = (big[i : i + step] for i in range(0, len(big), step))
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    for body, framing in (
        (big, {"Content-Length": str(len(big))}),
        (chunked, {"Transfer-Encoding": "chunked"}),
    ):
        answer, content = send_then_read(server.url, f"/b/{slug}/move", body, **framing)
        assert answer.status == 413, framing
        assert content == f"a move's body is at most {MAX_MOVE_BODY} bytes\n".encode()
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert "Content-Security-Policy" in answer.headers


def test_the_413_speaks_the_clients_language() -> None:
    scope = move_scope(4000)
    scope["headers"].append((b"accept-language", b"es-ES,es;q=0.9"))
    sent, _ = run(scope, body(b"x" * 4000))
    assert sent[0]["status"] == 413
    said = f"el cuerpo de un movimiento tiene como máximo {MAX_MOVE_BODY} bytes\n"
    assert sent[1]["body"].decode() == said
