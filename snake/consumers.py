"""The event stream served outside Django's request handler: no OS thread per viewer.

Django's ASGI handler keeps a thread for every streaming response; this channels consumer keeps
none. It carries what Django's middleware would have added (the security headers and the host
check); a request from the GRIP proxy still goes to the Django view, which answers with a hold.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from channels.generic.http import AsyncHttpConsumer
from channels.routing import URLRouter
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.urls import re_path

from snake import board, hub, security, streamcap
from snake.flow import flow_for
from snake.viewer import Viewer

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable, Callable], Awaitable[None]]


def _host_allowed(scope: Scope) -> bool:
    host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
    domain, _ = split_domain_port(host)
    return bool(domain) and validate_host(domain, settings.ALLOWED_HOSTS)


class EventsConsumer(AsyncHttpConsumer):
    slot: streamcap.Slot | None = None
    viewer: Viewer | None = None

    async def http_request(self, message: dict) -> None:
        if self.scope["method"] != "GET":
            await self._refuse(405, b"Method Not Allowed\n", [(b"Allow", b"GET")])
        elif not _host_allowed(self.scope):
            await self._refuse(400, b"Bad Request: host not in ALLOWED_HOSTS\n")
        elif (slot := streamcap.acquire(self.scope, owner=self)) is None:
            await self._refuse(429, *streamcap.refusal())
        else:
            self.slot = slot
            await self.send_headers(status=200, headers=security.stream_headers())
            await self._watch(self.scope["url_route"]["kwargs"]["slug"])

    async def _refuse(
        self, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        # The consumer runs outside Django's middleware: add what it would have.
        headers = [(b"Content-Type", b"text/plain; charset=utf-8"), *(headers or [])]
        await self.send_response(status, body, headers=[*headers, *security.security_headers()])

    async def _watch(self, slug: str) -> None:
        # The room writes to the server's own send: no task of ours per viewer. This handler
        # returns after the opening, so the consumer hears the client disconnect.
        self.slug = slug
        room, self.viewer = hub.join(slug, self.base_send, flow_for(self.base_send))
        try:
            await room.open(self.viewer)
        except BaseException:
            hub.leave(slug, self.viewer)
            raise

    async def disconnect(self) -> None:
        if self.slot is not None:
            self.slot.release()
        if self.viewer is not None:
            hub.leave(self.slug, self.viewer)


def _from_proxy(scope: Scope) -> bool:
    return any(name == b"grip-sig" for name, _ in scope["headers"])


def router(django_app: ASGIApp) -> ASGIApp:
    """Route event streams to the consumer (GRIP proxy requests to Django), the rest to Django."""
    consumer = EventsConsumer.as_asgi()

    async def events(scope: Scope, receive: Callable, send: Callable) -> None:
        app = django_app if _from_proxy(scope) else consumer
        await app(scope, receive, send)

    return URLRouter(
        [
            re_path(rf"^b/(?P<slug>{board.SLUG_PATTERN})/events/$", events),
            re_path(r"", django_app),
        ]
    )
