"""The event stream served outside Django's request handler: no OS thread per viewer.

Django's ASGI handler keeps a thread for every streaming response; this plain ASGI app keeps
none. It carries what Django's middleware would have added (the security headers and the host
check) and counts the stream against the client's cap. Not a channels consumer: channels'
AsyncConsumer closes old DB connections through a thread hop before every message and wraps
each receive in tasks, which in a connect storm cost more than the stream itself.
"""

from __future__ import annotations

import asyncio
from typing import TypedDict, cast

from asgiref.typing import ASGIReceiveCallable, ASGISendCallable, HTTPScope, Scope
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from snake.guards import refusal, security, streamcap
from snake.stream import hub
from snake.stream.flow import TaskFlow, flow_for


class URLRoute(TypedDict):
    args: tuple[str, ...]
    kwargs: dict[str, str]


class RoutedScope(HTTPScope):
    """An HTTP scope as channels' URLRouter passes it on: with the URL's groups."""

    url_route: URLRoute


def _host_allowed(scope: HTTPScope) -> bool:
    host = next((v for n, v in scope["headers"] if n == b"host"), b"").decode("latin-1")
    domain, _ = split_domain_port(host)
    return bool(domain) and validate_host(domain, settings.ALLOWED_HOSTS)


# Translated only once one is sent: choosing a language for every stream would slow a storm.
WRONG_METHOD = gettext_noop("method not allowed: GET the stream")
WRONG_HOST = gettext_noop("bad request: host not in ALLOWED_HOSTS")


def _refused(scope: HTTPScope) -> tuple[int, str, dict[str, str]] | None:
    """Why a stream request is refused before the cap (its untranslated message); else None."""
    if scope["method"] != "GET":
        return 405, WRONG_METHOD, {"Allow": "GET"}
    if not _host_allowed(scope):
        return 400, WRONG_HOST, {}
    return None


class StreamConsumer:
    """Stream one channel; `channel` is a format string over the URL's kwargs ("board-{slug}")."""

    def __init__(self, channel: str) -> None:
        self.channel_template = channel

    @classmethod
    def as_asgi(cls, channel: str = "") -> StreamConsumer:
        """Return the ASGI app, as channels' consumers are made (one object serves every stream)."""
        return cls(channel)

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        # Read the request to its end first, as a server expects; nothing in it is used.
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            if not message.get("more_body", False):
                break
        # channels' URLRouter routes only HTTP here, with the URL's groups.
        await self.serve(cast(RoutedScope, scope), receive, send)

    async def serve(
        self, scope: RoutedScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        # Refused outside Django's middleware: speaking() stands in for LanguageMiddleware.
        if (refused := _refused(scope)) is not None:
            status, message, headers = refused
            with refusal.speaking(scope):
                error = _(message)
            await self._refuse(scope, send, status, error, headers)
        elif (slot := streamcap.acquire(scope)) is None:
            with refusal.speaking(scope):
                error, headers = refusal.too_many_streams()
            await self._refuse(scope, send, 429, error, headers)
        else:
            try:
                channel = self.channel_template.format(**scope["url_route"]["kwargs"])
                await send({"type": "http.response.start", "status": 200,
                            "headers": security.stream_headers(), "trailers": False})  # fmt: skip
                await self._watch(channel, receive, send)
            finally:
                slot.release()

    @staticmethod
    async def _refuse(
        scope: HTTPScope, send: ASGISendCallable, status: int, error: str,
        headers: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        # The app runs outside Django's middleware: the helper adds what it would have.
        await refusal.send_asgi(scope, send, status, error, headers)

    @staticmethod
    async def _watch(channel: str, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        # The room writes to the server's own send: no task of ours per viewer. This app only
        # waits for the client's disconnect once the opening is out.
        flow = flow_for(send)
        room, viewer = hub.join(channel, send, flow)
        try:
            await room.open(viewer)
            while (await receive())["type"] != "http.disconnect":
                pass
        except asyncio.CancelledError:
            if not (isinstance(flow, TaskFlow) and flow.aborted):
                raise
            # Dropped where we cannot reach the socket: an app that returns with its response
            # unfinished has the server close the connection, and the client reconnects.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        finally:
            hub.leave(channel, viewer)
