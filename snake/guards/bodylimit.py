"""Refuse an oversized move body with 413 before Django reads it.

Django's ASGI handler reads a request's whole body (spooling it to disk past 2.5 MB) before any
middleware or view runs, so a cap in the view would come too late. This ASGI wrapper sits in
front of it for `POST /b/<slug>/move` only: a declared Content-Length over MAX_MOVE_BODY is
refused without reading a byte; a body without one (chunked) is read until it passes the cap
and refused then; a body within the cap is handed on unchanged.

Why 1 KiB: a move's body is about 100 bytes (`csrfmiddlewaretoken=` and 64 characters, then
`direction=right`), so 1 KiB is ten times what any real move sends and still refuses everything
else early. An over-long direction inside a small body is the view's 400, not a 413.

uvicorn streams the body to the app, so nothing past the cap is read. daphne (Twisted) receives
the whole body before it calls the app: there this saves Django's copy only, and a front proxy's
limit (nginx `client_max_body_size`) is what stops the bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

MAX_MOVE_BODY = 1024

Scope = dict[str, Any]
Message = dict[str, Any]
ASGIApp = Callable[[Scope, Callable, Callable], Awaitable[None]]


def _is_capped(scope: Scope, paths: re.Pattern[str]) -> bool:
    return (
        scope["type"] == "http"
        and scope["method"] == "POST"
        and paths.fullmatch(scope["path"]) is not None
    )


async def _too_large(scope: Scope, send: Callable) -> None:
    error = f"a move's body is at most {MAX_MOVE_BODY} bytes"
    # The same rule as errors.wants_json: JSON only when asked for by name.
    accept = b",".join(v for n, v in scope["headers"] if n == b"accept")
    if b"application/json" in accept:
        body, kind = json.dumps({"error": error}).encode(), b"application/json"
    else:
        body, kind = f"{error}\n".encode(), b"text/plain; charset=utf-8"
    headers = [
        (b"content-type", kind),
        (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"),
        # The rest of the body is not read: the connection cannot carry another request.
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def cap_move_bodies(app: ASGIApp, paths: re.Pattern[str]) -> ASGIApp:
    """Wrap `app` (Django) so that a POST to `paths` whose body passes MAX_MOVE_BODY gets 413."""

    async def capped(scope: Scope, receive: Callable, send: Callable) -> None:
        if not _is_capped(scope, paths):
            await app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > MAX_MOVE_BODY:
            await _too_large(scope, send)
            return
        received: list[Message] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left before its body arrived: nobody to answer
            size += len(message.get("body", b""))
            if size > MAX_MOVE_BODY:
                await _too_large(scope, send)
                return
            received.append(message)
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            # The body we read, then the real channel (Django listens on it for a disconnect).
            return received.pop(0) if received else await receive()

        await app(scope, replay, send)

    return capped
