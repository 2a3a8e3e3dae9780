"""The event stream served outside Django's request handler: no OS thread per viewer.

Django's ASGI handler keeps a thread for every streaming response; this channels consumer keeps
none. It carries what Django's middleware would have added (the security headers and the host
check) and counts the stream against the client's cap.
"""

from __future__ import annotations

from typing import Any, TypedDict

from asgiref.typing import HTTPRequestEvent, HTTPScope
from channels.generic.http import AsyncHttpConsumer
from django.conf import settings
from django.http.request import split_domain_port, validate_host

from snake.guards import refusal, security, streamcap
from snake.stream import hub
from snake.stream.flow import flow_for
from snake.stream.viewer import Viewer


class URLRoute(TypedDict):
    args: tuple[str, ...]
    kwargs: dict[str, str]


class RoutedScope(HTTPScope):
    """An HTTP scope as channels' URLRouter passes it on: with the URL's groups."""

    url_route: URLRoute


def _host_allowed(scope: HTTPScope) -> bool:
    host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
    domain, _ = split_domain_port(host)
    return bool(domain) and validate_host(domain, settings.ALLOWED_HOSTS)


class StreamConsumer(AsyncHttpConsumer):
    """Stream one channel; `channel` is a format string over the URL's kwargs ("board-{slug}")."""

    scope: RoutedScope
    slot: streamcap.Slot | None = None
    viewer: Viewer | None = None

    def __init__(self, *args: Any, channel: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.channel_template = channel

    async def http_request(self, message: HTTPRequestEvent) -> None:
        if self.scope["method"] != "GET":
            await self._refuse(405, "method not allowed: GET the stream", {"Allow": "GET"})
        elif not _host_allowed(self.scope):
            await self._refuse(400, "bad request: host not in ALLOWED_HOSTS")
        elif (slot := streamcap.acquire(self.scope, owner=self)) is None:
            await self._refuse(429, *refusal.too_many_streams())
        else:
            self.slot = slot
            await self.send_headers(status=200, headers=security.stream_headers())
            await self._watch(self.channel_template.format(**self.scope["url_route"]["kwargs"]))

    async def _refuse(self, status: int, error: str, headers: dict[str, str] | None = None) -> None:
        # The consumer runs outside Django's middleware: the helper adds what it would have.
        await refusal.send_asgi(self.scope, self.base_send, status, error, headers)

    async def _watch(self, channel: str) -> None:
        # The room writes to the server's own send: no task of ours per viewer. This handler
        # returns after the opening, so the consumer hears the client disconnect.
        self.channel = channel
        room, self.viewer = hub.join(channel, self.base_send, flow_for(self.base_send))
        try:
            await room.open(self.viewer)
        except BaseException:
            hub.leave(channel, self.viewer)
            raise

    async def disconnect(self) -> None:
        if self.slot is not None:
            self.slot.release()
        if self.viewer is not None:
            hub.leave(self.channel, self.viewer)
