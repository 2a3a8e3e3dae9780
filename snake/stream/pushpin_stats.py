"""Count who watches through Pushpin, from its handler's stats socket, as a census source.

Where Pushpin holds the streams no worker sees its viewers; Pushpin's handler says how many
subscribe to each channel on its stats socket (ZeroMQ PUB; `stats_spec`, `stats_format=json`):
a `sub` packet at once when a channel gains its first subscriber or loses its last, at most one
a second while the count changes, and the same again every 45 s. PUB drops what a slow reader
misses and a new reader hears of a channel only at its next repeat, so a count is kept until its
packet's own `ttl` runs out. Every worker reads the same packets and reports the same total,
under one member name (Census.add(shared=True)), so it is counted once, not once per worker.
Several Pushpin edges: GRIP_STATS lists each one's socket; their counts add up.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from urllib.parse import unquote

import zmq
from django.conf import settings

from snake.stream import census

NAME = "pushpin"  # the census member every worker reports Pushpin's viewers under
PACKET = b"sub "  # the packets with a channel's subscriber count; JSON after a "J"
GRIP_PREFIX = "events-"  # django-eventstream's channel name in Pushpin (snake.stream.grip)
logger = logging.getLogger(__name__)


class Subscribers:
    """The counts the stats sockets last told, each until its ttl; called, a census source."""

    def __init__(self, specs: list[str]) -> None:
        self.specs = specs
        # (edge, channel) -> (subscribers, when it expires on time.monotonic())
        self.seen: dict[tuple[str, str], tuple[int, float]] = {}
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="pushpin-stats", daemon=True)

    def take(self, packet: bytes, now: float | None = None) -> None:
        """Note what one stats packet says; ignore any that is not a JSON `sub` of a stream."""
        if not packet.startswith(PACKET + b"J"):
            return
        try:
            sub = json.loads(packet[len(PACKET) + 1 :])
            channel, edge, ttl = str(sub["channel"]), str(sub["from"]), float(sub["ttl"])
            subscribers = 0 if sub.get("unavailable") else int(sub["subscribers"])
        except (ValueError, KeyError, TypeError):
            logger.warning("unreadable Pushpin stats packet: %r", packet[:200])
            return
        if not channel.startswith(GRIP_PREFIX):
            return
        key = (edge, unquote(channel.removeprefix(GRIP_PREFIX)))
        with self.lock:
            if subscribers:
                self.seen[key] = (subscribers, (time.monotonic() if now is None else now) + ttl)
            else:
                self.seen.pop(key, None)

    def __call__(self) -> dict[str, int]:
        """Return channel -> subscribers on every edge, forgetting counts past their ttl."""
        now = time.monotonic()
        counts: dict[str, int] = {}
        with self.lock:
            for key, (subscribers, expires) in list(self.seen.items()):
                if expires < now:
                    del self.seen[key]
                else:
                    counts[key[1]] = counts.get(key[1], 0) + subscribers
        return counts

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()

    def _run(self) -> None:
        with zmq.Context() as context, context.socket(zmq.SUB) as sock:
            sock.setsockopt(zmq.SUBSCRIBE, PACKET)
            sock.setsockopt(zmq.LINGER, 0)
            for spec in self.specs:
                sock.connect(spec)
            while not self.stopped.is_set():
                if sock.poll(500):
                    self.take(sock.recv())


_subscribers: Subscribers | None = None
_lock = threading.Lock()


def specs() -> list[str]:
    return [spec.strip() for spec in settings.SNAKE_GRIP_STATS.split(",") if spec.strip()]


def listen() -> None:
    """Count Pushpin's subscribers in the census from now on, if GRIP_STATS names its socket."""
    global _subscribers
    if _subscribers is not None or not specs() or not census.active():
        return
    with _lock:
        if _subscribers is None:
            _subscribers = Subscribers(specs())
            _subscribers.start()
            census.census().add(NAME, _subscribers, shared=True)
