"""A channel's stream as a Django response, for the view behind snake.stream.routing.

Under the ASGI app only requests the GRIP proxy signed reach Django's view: they get the hold.
Any other request (Django's test client; Django's handler mounted without the router) gets the
stream itself, under the same stream cap as the consumer's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from django.http import HttpRequest, HttpResponseBase, StreamingHttpResponse
from django_eventstream.utils import add_default_headers

from snake.guards import refusal, streamcap
from snake.stream import grip, hub


def serve(request: HttpRequest, channel: str) -> HttpResponseBase:
    """Answer a stream request: the GRIP hold when the proxy signed it, else the stream."""
    if grip.verified(request.headers.get("Grip-Sig")):
        return grip.hold(request, channel)
    slot = streamcap.acquire_address(request.META.get("REMOTE_ADDR", ""))
    if slot is None:
        return refusal.response(request, 429, *refusal.too_many_streams())
    response = StreamingHttpResponse(_released(hub.stream(channel), slot))
    # A client may never iterate the body (Django's test client reading headers only): the
    # slot then goes with the response, as the consumer's goes with the consumer.
    slot.release_with(response)
    response["Content-Type"] = "text/event-stream"
    add_default_headers(response, request=request)
    return response


async def _released(body: AsyncIterator[bytes], slot: streamcap.Slot) -> AsyncIterator[bytes]:
    try:
        async for chunk in body:
            yield chunk
    finally:
        slot.release()
