"""Route a channel's stream URL to the consumer, or to Django when the GRIP proxy signed it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from django.urls import URLPattern, re_path

from snake.stream import grip
from snake.stream.consumers import StreamConsumer

ASGIApp = Callable[[dict[str, Any], Callable[..., Any], Callable[..., Any]], Awaitable[None]]


def stream_path(pattern: str, channel: str, django_app: ASGIApp) -> URLPattern:
    """Serve `pattern` as the stream of `channel` (a format string over the pattern's groups).

    A request whose Grip-Sig verifies goes to `django_app`, whose view answers the proxy with a
    hold (snake.stream.responses); every other one to the consumer, under the stream cap.
    """
    consumer = StreamConsumer.as_asgi(channel=channel)

    async def route(
        scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        app = django_app if grip.scope_verified(scope) else consumer
        await app(scope, receive, send)

    return re_path(pattern, route)
