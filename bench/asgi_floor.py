"""The ASGI floor: bench/floor.py's contract as a bare ASGI app, for the server's own per-send cost.

    .venv/bin/python -m deploy.serve --app bench.asgi_floor:application --port 18402

Served by the same uvicorn as `make run` (deploy/serve.py's command()), it does the least an ASGI
app can per move: the board lives in memory, the event is encoded once into one ASGI message, and
that message goes to every viewer's `send` in one pass, each send driven to its first wait
without a task (as snake/stream/viewer.py does). What it costs over bench/floor.py is the server's;
what snake costs over it is snake's. Endpoints, answers and the csrftoken check as bench/floor.py.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any
from urllib.parse import parse_qs

from bench.floor import PAGE, ROUTE, STEPS, Board

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]
STREAM_HEADERS = [
    (b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]  # fmt: skip


class Viewer:
    """One stream: a message is sent at once unless a send still waits; then the newest waits."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.busy: asyncio.Future[None] | None = None
        self.pending: Message | None = None

    def offer(self, message: Message) -> None:
        if self.busy is not None:
            self.pending = message
            return
        coro: Any = self.send(message)  # uvicorn's send is async def: a coroutine
        try:
            awaited = coro.send(None)
        except StopIteration:
            return
        except Exception:  # the connection is gone; its disconnect removes the viewer
            return
        # uvicorn waits only while the transport is paused: a task finishes this send.
        self.busy = asyncio.ensure_future(finish(coro, awaited))
        self.busy.add_done_callback(self.resume)

    def resume(self, _: asyncio.Future[None]) -> None:
        message, self.busy, self.pending = self.pending, None, None
        if message is not None:
            self.offer(message)


@types.coroutine
def finish(coro: Coroutine[Any, Any, None], awaited: Any) -> Generator[Any, Any, None]:
    """Wait on what coro first waited on, then run it on (snake/stream/viewer.py's trick)."""
    try:
        yield awaited
    except BaseException:
        coro.close()
        raise
    yield from coro  # type: ignore[misc]  # a coroutine, driven from a generator-based one


boards: dict[str, tuple[Board, set[Viewer]]] = {}


def board(slug: str) -> tuple[Board, set[Viewer]]:
    if slug not in boards:
        boards[slug] = (Board(slug), set())
    return boards[slug]


def body(data: bytes, more: bool = False) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": more}


async def answer(send: Send, status: int, data: bytes, kind: bytes, *extra: Any) -> None:
    headers = [(b"content-type", kind), (b"content-length", str(len(data)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send(body(data))


async def read_body(receive: Receive) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False) and len(chunks) < 64  # a move's body is tiny
    return b"".join(chunks)


async def stream(slug: str, receive: Receive, send: Send) -> None:
    target, viewers = board(slug)
    await send({"type": "http.response.start", "status": 200, "headers": STREAM_HEADERS})
    await send(body(target.event(), more=True))
    viewer = Viewer(send)
    viewers.add(viewer)
    try:
        while (await receive())["type"] != "http.disconnect":
            pass
    finally:
        viewers.discard(viewer)


def move(slug: str, headers: dict[bytes, bytes], data: bytes) -> tuple[int, object]:
    """Apply a move in memory and fan it out; the status and JSON answer."""
    cookies = dict(
        c.strip().partition("=")[::2]
        for c in headers.get(b"cookie", b"").decode("latin-1").split(";")
        if c
    )
    token = headers.get(b"x-csrftoken", b"").decode("latin-1")
    if not token or cookies.get("csrftoken") != token:
        return 403, {"error": "CSRF check failed"}
    direction = parse_qs(data.decode("latin-1")).get("direction", [""])[0].lower()
    if direction not in STEPS:
        return 400, {"error": f"direction: one of {list(STEPS)}"}
    target, viewers = board(slug)
    before = target.seq
    target.move(direction)  # Board.move writes to its own viewers: it has none here
    if target.seq != before:
        message = body(target.event(), more=True)
        for viewer in viewers:
            viewer.offer(message)
    return 200, target.state()


async def application(scope: Message, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    path, method = scope["path"], scope["method"]
    route = ROUTE.fullmatch(path)
    slug, action = route.groups() if route else ("", None)
    if path != "/" and not route:
        await answer(send, 404, b"not found\n", b"text/plain")
    elif action == "move" and method != "POST" or action != "move" and method != "GET":
        await answer(send, 405, b"", b"text/plain")
    elif action is None:
        cookie = f"csrftoken={secrets.token_hex(16)}; Path=/".encode()
        await answer(send, 200, PAGE, b"text/html", (b"set-cookie", cookie))
    elif action == "events/":
        await stream(slug, receive, send)
    elif action == "state":
        await answer(send, 200, json.dumps(board(slug)[0].state()).encode(), b"application/json")
    else:
        status, result = move(slug, dict(scope["headers"]), await read_body(receive))
        await answer(send, status, json.dumps(result).encode(), b"application/json")
