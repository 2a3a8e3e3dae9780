"""The event stream served outside Django's request handler: no OS thread per viewer.

Django's ASGI handler keeps a thread for every streaming response; this channels consumer keeps
none. It carries what Django's middleware would have added (the security headers and the host
check); a request from the GRIP proxy still goes to the Django view, which answers with a hold.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from channels.generic.http import AsyncHttpConsumer
from channels.routing import URLRouter
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.urls import re_path

from snake import board, hub, security, streamcap

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable, Callable], Awaitable[None]]


def _host_allowed(scope: Scope) -> bool:
    host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
    domain, _ = split_domain_port(host)
    return bool(domain) and validate_host(domain, settings.ALLOWED_HOSTS)


class EventsConsumer(AsyncHttpConsumer):
    slot: streamcap.Slot | None = None
    task: asyncio.Task | None = None

    async def http_request(self, message: dict) -> None:
        if self.scope["method"] != "GET":
            await self.send_response(405, b"Method Not Allowed\n", headers=[(b"Allow", b"GET")])
        elif not _host_allowed(self.scope):
            await self.send_response(400, b"Bad Request: host not in ALLOWED_HOSTS\n")
        elif (slot := streamcap.acquire(self.scope, owner=self)) is None:
            body, headers = streamcap.refusal()
            await self.send_response(429, body, headers=headers)
        else:
            self.slot = slot
            await self.send_headers(status=200, headers=security.stream_headers())
            slug = self.scope["url_route"]["kwargs"]["slug"]
            # Not awaited here: the consumer must stay free to hear the client disconnect.
            self.task = asyncio.ensure_future(self._pump(slug))

    async def _pump(self, slug: str) -> None:
        async for chunk in hub.stream(slug):
            await self.send_body(chunk, more_body=True)

    async def disconnect(self) -> None:
        if self.slot is not None:
            self.slot.release()
        if self.task is not None:
            self.task.cancel()


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
