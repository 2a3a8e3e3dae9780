"""Route a channel's stream URL to the consumer, or to Django when the GRIP proxy signed it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from asgiref.typing import ASGI3Application, ASGIReceiveCallable, ASGISendCallable, Scope
from django.urls import re_path

from snake.stream import grip
from snake.stream.consumers import StreamConsumer

if TYPE_CHECKING:
    from channels.routing import _ExtendedURLPattern


def asgi_path(pattern: str, app: ASGI3Application) -> _ExtendedURLPattern:
    """Route `pattern` to an ASGI app, for channels' URLRouter."""
    # django-stubs types re_path's view as a Django view only; channels routes ASGI apps with it.
    return re_path(pattern, app)  # type: ignore[arg-type, return-value]  # django-stubs: views only


def stream_path(pattern: str, channel: str, django_app: ASGI3Application) -> _ExtendedURLPattern:
    """Serve `pattern` as the stream of `channel` (a format string over the pattern's groups).

    A request whose Grip-Sig verifies goes to `django_app`, whose view answers the proxy with a
    hold (snake.stream.responses); every other one to the consumer, under the stream cap.
    """
    consumer = StreamConsumer.as_asgi(channel=channel)

    async def route(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if grip.scope_verified(scope):
            scope[grip.ARRIVED] = time.monotonic()  # type: ignore[literal-required]  # our key
            await django_app(scope, receive, send)
        else:
            await consumer(scope, receive, send)

    return asgi_path(pattern, route)
