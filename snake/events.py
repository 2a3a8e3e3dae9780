"""Render the logo fragment, encode it as django-eventstream's events, publish it after commit."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import quote

from django import db
from django.db import transaction
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.loader import render_to_string
from django_eventstream.event import Event
from django_eventstream.utils import add_default_headers, sse_encode_event
from django_grip import set_hold_stream

from snake import board, fanout

EVENT_TYPE = "position"
KEEPALIVE_SECONDS = 20
# django-eventstream's own stream opening: 2 KB of padding for proxies that hold small
# bodies back, then `stream-open`.
PREAMBLE = ":" + " " * 2048 + "\n\nevent: stream-open\ndata:\n\n"
KEEPALIVE = "event: keep-alive\ndata:\n\n"
_SEQ = re.compile(r'data-seq="(\d+)"')


def channel(slug: str) -> str:
    return f"board-{slug}"


def grip_channel(slug: str) -> str:
    # The name django-eventstream publishes a channel under to the GRIP proxy.
    return "events-" + quote(channel(slug))


def render_logo(position: board.Position) -> str:
    return render_to_string("snake/_logo.html", {"position": position}).strip()


def publish(slug: str) -> None:
    """Send the board's newest state to every viewer once the current transaction commits."""
    # django-eventstream delivers at once: sent inside a transaction that later rolls back,
    # the event would show viewers a move that never happened.
    # robust: the move has committed, so whatever fails here is logged, never answered 5xx.
    transaction.on_commit(lambda: _publish_newest(slug), robust=True)


def _publish_newest(slug: str) -> None:
    with transaction.atomic():
        position = board.claim_unpublished(slug)
        if position is not None:
            fanout.deliver(channel(slug), EVENT_TYPE, render_logo(position))


def read_position(slug: str) -> board.Position:
    # A stream lives for hours: its thread must not keep a database connection per viewer.
    try:
        return board.current(slug)
    finally:
        db.connection.close()


def event_seq(event: Event) -> int:
    # Events reach us from other processes (Redis) as rendered HTML only: seq is in the data.
    found = _SEQ.search(event.data)
    return int(found.group(1)) if found else -1


def encode(fragment: str) -> str:
    return sse_encode_event(EVENT_TYPE, fragment)


def opening(position: board.Position) -> str:
    """Return what every stream starts with: the preamble and the current position."""
    return PREAMBLE + encode(render_logo(position))


def proxied(request: HttpRequest) -> bool:
    """Whether a GRIP proxy (Pushpin) sent this request, and so will hold its stream."""
    grip = getattr(request, "grip", None)
    return grip is not None and grip.proxied


def grip_hold_response(request: HttpRequest, slug: str) -> HttpResponse:
    """Answer the proxy with the opening and the channel to hold the stream on."""
    response = HttpResponse(opening(board.current(slug)), content_type="text/event-stream")
    set_hold_stream(request, [grip_channel(slug)], KEEPALIVE, KEEPALIVE_SECONDS)
    add_default_headers(response, request=request)
    return response


def stream_response(request: HttpRequest, body: AsyncIterator[bytes]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(body, content_type="text/event-stream")
    add_default_headers(response, request=request)
    return response
