"""The stream's bytes: django-eventstream's framing, opening and keep-alive."""

from __future__ import annotations

from django_eventstream.utils import sse_encode_event

from snake.stream.registry import State

KEEPALIVE_SECONDS = 20
# django-eventstream's own stream opening: 2 KB of padding for proxies that hold small
# bodies back, then `stream-open`.
PREAMBLE = ":" + " " * 2048 + "\n\nevent: stream-open\ndata:\n\n"
KEEPALIVE = "event: keep-alive\ndata:\n\n"


def encode(name: str, fragment: str) -> str:
    """Frame one event; a multi-line fragment becomes several `data:` lines."""
    framed: str = sse_encode_event(name, fragment)
    return framed


def opening(state: State) -> str:
    """Return what every stream starts with: the preamble, then each event of the state."""
    return PREAMBLE + "".join(encode(name, fragment) for name, (_, fragment) in state.items())
