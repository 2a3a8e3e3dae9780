"""The GRIP proxy's way (Pushpin): which stream requests it signed, and the hold it gets back.

A stream goes the proxy's way only when GRIP_PROXIES is configured with a key and the request's
Grip-Sig verifies with it. Anyone can send a Grip-Sig header: an unverified one is an ordinary
stream, served by the consumer under the stream cap.
"""

from __future__ import annotations

from urllib.parse import quote

from asgiref.typing import Scope
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django_eventstream.utils import add_default_headers
from django_grip import set_hold_stream
from gripcontrol import validate_sig

from snake.stream import shared, sse

# The ASGI scope key under which snake.stream.routing notes when a stream request arrived, so
# that a hold shares a read started after it arrived (a request may wait for a thread first).
ARRIVED = "snake.arrived"


def verified(signature: str | None) -> bool:
    """Whether `signature` (a Grip-Sig header) was signed by a configured GRIP proxy's key."""
    if not signature:
        return False
    for proxy in getattr(settings, "GRIP_PROXIES", ()):
        key = proxy.get("verify_key") or proxy.get("key")
        if key and validate_sig(signature, key, iss=proxy.get("verify_iss")):
            return True
    return False


def scope_verified(scope: Scope) -> bool:
    if scope["type"] != "http":
        return False  # the proxy holds HTTP streams only
    sig = next((v for n, v in scope.get("headers", ()) if n == b"grip-sig"), None)
    return verified(sig.decode("latin-1") if sig is not None else None)


def grip_channel(channel: str) -> str:
    # The name django-eventstream publishes a channel under to the GRIP proxy.
    return "events-" + quote(channel)


def arrived(request: HttpRequest) -> float | None:
    """When the request arrived (time.monotonic()), if its server noted it in the scope."""
    scope = getattr(request, "scope", None)  # an ASGIRequest's; a WSGIRequest has none
    when = scope.get(ARRIVED) if isinstance(scope, dict) else None
    return when if isinstance(when, float) else None


def hold(request: HttpRequest, channel: str) -> HttpResponse:
    """Answer the proxy with the opening and the channel to hold the stream on."""
    # No read per hold: the holds waiting together share one (snake.stream.shared).
    opening = shared.reads.opening(channel, arrived(request))
    response = HttpResponse(opening, content_type="text/event-stream")
    set_hold_stream(request, [grip_channel(channel)], sse.KEEPALIVE, sse.KEEPALIVE_SECONDS)
    add_default_headers(response, request=request)
    return response
