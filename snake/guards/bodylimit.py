"""Refuse an oversized move body with 413 before Django reads it.

Django's ASGI handler reads a request's whole body (spooling it to disk past 2.5 MB) before any
middleware or view runs, so a cap in the view would come too late. This ASGI wrapper sits in
front of it for `POST /b/<slug>/move` only: a body within the cap is handed on unchanged; a
larger one (declared by Content-Length, or read until it passes the cap) gets a 413.

Why 1 KiB: a move's body is about 100 bytes (`csrfmiddlewaretoken=` and 64 characters, then
`direction=right`), so 1 KiB is ten times what any real move sends and still refuses everything
else early. An over-long direction inside a small body is the view's 400, not a 413.

After the 413 the rest of the body, up to MAX_DRAINED, is read and thrown away before the
connection closes: a client that sends its whole body before it reads (most do) would otherwise
write into a closed socket and get a reset instead of the answer. A declared Content-Length
over MAX_DRAINED is answered at once and not drained: that client may see a reset.
"""

from __future__ import annotations

import re

from asgiref.typing import (
    ASGI3Application,
    ASGIReceiveCallable,
    ASGIReceiveEvent,
    ASGISendCallable,
    HTTPRequestEvent,
    HTTPScope,
    Scope,
)
from django.utils.translation import gettext as _

from snake.guards import refusal

MAX_MOVE_BODY = 1024
MAX_DRAINED = 8 * 1024 * 1024


async def _drain(receive: ASGIReceiveCallable, size: int, more: bool) -> None:
    """Read and discard the body until it ends, the client leaves or MAX_DRAINED was read."""
    while more and size <= MAX_DRAINED:
        message = await receive()
        if message["type"] != "http.request":
            return  # the client left
        size += len(message.get("body", b""))
        more = message.get("more_body", False)


async def _too_large(
    scope: HTTPScope, receive: ASGIReceiveCallable, send: ASGISendCallable, size: int, more: bool
) -> None:
    with refusal.speaking(scope):  # in front of Django: no LanguageMiddleware yet
        error = _("a move's body is at most %(max)d bytes") % {"max": MAX_MOVE_BODY}
    # The connection carries no other request: the body is not read to its end (or not at all).
    close = {"Connection": "close"}
    # The answer goes out first, so the server sends no "100 Continue" while we drain; the
    # response ends after the drain, as servers stop reading once it has ended.
    await refusal.send_asgi(scope, send, 413, error, close, more_body=True)
    await _drain(receive, size, more)
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def cap_move_bodies(app: ASGI3Application, paths: re.Pattern[str]) -> ASGI3Application:
    """Wrap `app` (Django) so that a POST to `paths` whose body passes MAX_MOVE_BODY gets 413."""

    async def capped(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if not (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and paths.fullmatch(scope["path"]) is not None
        ):
            await app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > MAX_MOVE_BODY:
            more = int(declared) <= MAX_DRAINED  # beyond it, no drain: answer and close
            await _too_large(scope, receive, send, 0, more)
            return
        received: list[HTTPRequestEvent] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left before its body arrived: nobody to answer
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
            if size > MAX_MOVE_BODY:
                await _too_large(scope, receive, send, size, more)
                return
            received.append(message)
            if not more:
                break

        async def replay() -> ASGIReceiveEvent:
            # The body we read, then the real channel (Django listens on it for a disconnect).
            return received.pop(0) if received else await receive()

        await app(scope, replay, send)

    return capped
