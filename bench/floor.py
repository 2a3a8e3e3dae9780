"""The fan-out floor: snake's HTTP contract on bare asyncio, with nothing between move and socket.

Each move's event is encoded once and written straight to every viewer's transport, so what a
fan-out client measures against this server is close to the least a Python server on this box can
do. Use it to calibrate a load client (bench/fanout.py) before trusting its figures for the app.

    .venv/bin/python -m bench.floor [--host 127.0.0.1] [--port 18400]

Speaks just enough of README.md's contract: `GET /` (and `/b/<slug>/`) sets a csrftoken cookie;
`POST /b/<slug>/move` (`direction`, `X-CSRFToken`) answers `{"slug","x","y","seq"}`;
`GET /b/<slug>/state`; `GET /b/<slug>/events/` streams `event: position`, current state first.
Boards live in memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import secrets
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

WIDTH, HEIGHT, LOGO_W, LOGO_H, STEP = 1200, 700, 160, 48, 5
START_X, START_Y = 500, 150
STEPS = {"w": (0, -1), "a": (-1, 0), "s": (0, 1), "d": (1, 0)}
STEPS |= {"up": STEPS["w"], "left": STEPS["a"], "down": STEPS["s"], "right": STEPS["d"]}
ROUTE = re.compile(r"/b/([a-z0-9][a-z0-9-]{0,39})/(move|state|events/)?")
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"X-Accel-Buffering: no\r\nConnection: close\r\n\r\n"
)
PAGE = b"<!doctype html><title>snake floor</title><div id=board></div>\n"


@dataclass
class Board:
    slug: str
    x: int = START_X
    y: int = START_Y
    seq: int = 0
    viewers: set[asyncio.Transport] = field(default_factory=set)

    def state(self) -> dict[str, object]:
        return {"slug": self.slug, "x": self.x, "y": self.y, "seq": self.seq}

    def event(self) -> bytes:
        logo = (
            f'<div id="logo" class="logo" style="left: {self.x}px; top: {self.y}px" '
            f'data-x="{self.x}" data-y="{self.y}" data-seq="{self.seq}"></div>'
        )
        return f"event: position\ndata: {logo}\n\n".encode()

    def move(self, direction: str) -> None:
        dx, dy = STEPS[direction]
        x, y = self.x + dx * STEP, self.y + dy * STEP
        if 0 <= x <= WIDTH - LOGO_W and 0 <= y <= HEIGHT - LOGO_H:
            self.x, self.y, self.seq = x, y, self.seq + 1
            data = self.event()
            for viewer in self.viewers:
                viewer.write(data)


boards: dict[str, Board] = {}


def board(slug: str) -> Board:
    if slug not in boards:
        boards[slug] = Board(slug)
    return boards[slug]


def response(status: str, body: bytes, content_type: str, *extra: str) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    return ("\r\n".join([*head, *extra, "", ""])).encode() + body


def json_response(status: str, data: object) -> bytes:
    return response(status, json.dumps(data).encode(), "application/json")


class Http(asyncio.Protocol):
    """HTTP/1.1 with keep-alive; a request for events turns the connection into a viewer."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""
        self.viewing: Board | None = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.viewing is not None:
            self.viewing.viewers.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        if self.viewing is not None:
            return
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            lines = self.buffer[:end].decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            method, path = (lines[0].split(" ") + ["", ""])[:2]
            self.handle(method, path.partition("?")[0], headers, body)
            if self.viewing is not None:
                return

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        route = ROUTE.fullmatch(path)
        slug, action = route.groups() if route else ("", None)
        if path != "/" and not route:
            answer = response("404 Not Found", b"not found\n", "text/plain")
        elif action == "move" and method != "POST" or action != "move" and method != "GET":
            answer = response("405 Method Not Allowed", b"", "text/plain")
        elif action is None:
            token = secrets.token_hex(16)
            answer = response("200 OK", PAGE, "text/html", f"Set-Cookie: csrftoken={token}; Path=/")
        elif action == "events/":
            self.viewing = board(slug)
            self.viewing.viewers.add(self.transport)
            self.transport.write(STREAM_HEAD + self.viewing.event())
            return
        elif action == "state":
            answer = json_response("200 OK", board(slug).state())
        else:
            answer = self.move(slug, headers, body)
        self.transport.write(answer)

    def move(self, slug: str, headers: dict[str, str], body: bytes) -> bytes:
        cookies = dict(
            c.strip().partition("=")[::2] for c in headers.get("cookie", "").split(";") if c
        )
        token = headers.get("x-csrftoken", "")
        if not token or cookies.get("csrftoken") != token:
            return json_response("403 Forbidden", {"error": "CSRF check failed"})
        direction = parse_qs(body.decode()).get("direction", [""])[0].lower()
        if direction not in STEPS:
            return json_response("400 Bad Request", {"error": f"direction: one of {list(STEPS)}"})
        target = board(slug)
        target.move(direction)
        return json_response("200 OK", target.state())


async def run(
    protocol: Callable[[], asyncio.Protocol], host: str, port: int, name: str, about: str = ""
) -> None:
    """Serve `protocol` on host:port until SIGINT or SIGTERM (the floors share this)."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(protocol, host, port, backlog=4096)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"{name}: http://{host}:{port}/ pid {os.getpid()}{about}", flush=True)
    async with server:
        await stop.wait()


async def serve(host: str, port: int) -> None:
    await run(Http, host, port, "floor")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18400)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
