"""Render the logo fragment, publish it once a move commits, and stream a board's positions.

The only module that talks to django-eventstream.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from urllib.parse import quote

from asgiref.sync import sync_to_async
from django import db
from django.db import transaction
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.loader import render_to_string
from django_eventstream.event import Event
from django_eventstream.utils import add_default_headers, sse_encode_event
from django_eventstream.views import Listener, get_listener_manager
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


def _read_position(slug: str) -> board.Position:
    # A stream lives for hours: its thread must not keep a database connection per viewer.
    try:
        return board.current(slug)
    finally:
        db.connection.close()


def event_seq(event: Event) -> int:
    # Events reach us from other processes (Redis) as rendered HTML only: seq is in the data.
    found = _SEQ.search(event.data)
    return int(found.group(1)) if found else -1


def _encode(fragment: str) -> str:
    return sse_encode_event(EVENT_TYPE, fragment)


async def _positions(slug: str) -> AsyncIterator[str]:
    """Yield the current position, then every newer one; never a seq at or below one sent."""
    name = channel(slug)
    manager = get_listener_manager()
    listener = Listener()
    listener.channels = {name}
    listener.assign_loop()
    # Subscribe before reading the state, so that no move can fall between the two.
    manager.add_listener(listener)
    current = sync_to_async(_read_position, thread_sensitive=False)
    try:
        position = await current(slug)
        sent = position.seq
        yield PREAMBLE + _encode(render_logo(position))
        while True:
            try:
                await asyncio.wait_for(listener.aevent.wait(), KEEPALIVE_SECONDS)
            except TimeoutError:
                yield KEEPALIVE
                continue
            with manager.lock:
                items = listener.channel_items.get(name, [])
                overflow = listener.overflow
                listener.channel_items = {}
                listener.overflow = False
                listener.aevent.clear()
            # Viewers need only the newest position; publishes from several threads or
            # workers can arrive out of order, so pick by seq, not by arrival.
            newest = max(items, key=event_seq, default=None)
            fragment = None
            if newest is not None and event_seq(newest) > sent:
                sent, fragment = event_seq(newest), newest.data
            if overflow:
                # django-eventstream dropped events past its MAX_PENDING queue, maybe the
                # last one: the database holds it, since events are sent after commit.
                position = await current(slug)
                if position.seq > sent:
                    sent, fragment = position.seq, render_logo(position)
            if fragment is not None:
                yield _encode(fragment)
    finally:
        manager.remove_listener(listener)


def stream_response(request: HttpRequest, slug: str) -> HttpResponse:
    """Answer with the board's event stream (first event: the current position)."""
    grip = getattr(request, "grip", None)
    if grip is not None and grip.proxied:
        # Behind a GRIP proxy (Pushpin): it holds the stream; we send the opening and the
        # channel to subscribe it to, and publish moves to the proxy.
        opening = PREAMBLE + _encode(render_logo(board.current(slug)))
        response = HttpResponse(opening, content_type="text/event-stream")
        set_hold_stream(request, [grip_channel(slug)], KEEPALIVE, KEEPALIVE_SECONDS)
    else:
        response = StreamingHttpResponse(_positions(slug), content_type="text/event-stream")
    add_default_headers(response, request=request)
    return response
