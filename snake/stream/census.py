"""Count who watches a channel across processes, through Redis: one total, one publisher a period.

Every PERIOD each process writes how many watch each of its channels into a key of its own
with a TTL — its heartbeat — and adds the key to the channel's set. Then, for each channel,
whichever process takes the channel's lock (SET NX PX PERIOD) sums the keys that still live,
forgets those that expired (a dead worker's viewers are uncounted within TTL seconds) and, if
the total changed, publishes the `presence` event on every path (snake.stream.delivery). The
version is Redis's clock, so every room and the GRIP proxy keep the newest.

A process's counts come from its sources: its rooms (snake.stream.hub) and, where Pushpin holds
the streams, Pushpin's stats socket (snake.stream.pushpin_stats), which every process hears
alike and so reports under one shared member, counted once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping

import redis
from django.conf import settings
from redis.exceptions import RedisError

from snake.health import Health
from snake.stream import delivery, registry
from snake.stream.presence import NAME, PERIOD

TTL = 4  # seconds a source's count outlives its last heartbeat
KEY = "snake:census:"
SHOWN_SECONDS = 86_400  # how long the last total shown is kept for a channel no one reports
# channel -> how many watch it there now
Source = Callable[[], Mapping[str, int]]
logger = logging.getLogger(__name__)
health = Health("Redis (census)", "each worker shows only its own viewers' count")


def _members(channel: str) -> str:
    return f"{KEY}{channel}:members"


def _count(channel: str, member: str) -> str:
    return f"{KEY}{channel}:count:{member}"


class Census:
    """This process's part in the count: its sources, what it reported, and the ticking thread."""

    def __init__(self, client: redis.Redis, name: str | None = None) -> None:
        self.client = client
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.sources: dict[str, Source] = {}
        self.shared: set[str] = set()  # sources every process reports alike: one member for all
        self.reported: dict[str, set[str]] = {}  # channel -> our members with a key in Redis
        self.thread: threading.Thread | None = None
        self.stopped = threading.Event()

    def add(self, name: str, source: Source, shared: bool = False) -> None:
        """Count `source()` as this process's viewers under `name` (or all's, if `shared`)."""
        self.sources[name] = source
        if shared:
            self.shared.add(name)
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="census", daemon=True)
            self.thread.start()

    def counts(self) -> dict[str, dict[str, int]]:
        """Return channel -> member -> count, for the channels whose owner shows an audience."""
        found: dict[str, dict[str, int]] = {}
        for source_name, source in tuple(self.sources.items()):
            member = source_name if source_name in self.shared else f"{self.name}/{source_name}"
            for channel, count in source().items():
                if registry.presence(channel) is not None:
                    found.setdefault(channel, {})[member] = count
        return found

    def report(self, counts: Mapping[str, Mapping[str, int]]) -> None:
        """Write our counts with their TTL; take back at once the ones whose viewers all left."""
        pipe = self.client.pipeline(transaction=False)
        for channel, members in counts.items():
            for member, count in members.items():
                pipe.set(_count(channel, member), count, ex=TTL)
            pipe.sadd(_members(channel), *members)
            pipe.expire(_members(channel), TTL * 2)  # a set no one refreshes goes too
        for channel, ours in self.reported.items():
            for member in ours - set(counts.get(channel, {})):
                pipe.delete(_count(channel, member))
                pipe.srem(_members(channel), member)
        pipe.execute()
        self.reported = {channel: set(members) for channel, members in counts.items()}

    def total(self, channel: str) -> int:
        """Return how many watch `channel` in every process whose heartbeat lives."""
        members = sorted(str(member) for member in self.client.smembers(_members(channel)))
        if not members:
            return 0
        counts = self.client.mget([_count(channel, member) for member in members])
        dead = [member for member, count in zip(members, counts, strict=True) if count is None]
        if dead:
            self.client.srem(_members(channel), *dead)
        return sum(int(count) for count in counts if count is not None)

    def publish(self, channel: str) -> None:
        """Show the channel's total to every viewer if it changed; at most one process a period."""
        if not self.client.set(f"{KEY}{channel}:lock", self.name, nx=True, px=int(PERIOD * 1000)):
            return
        total = self.total(channel)
        shown = self.client.set(f"{KEY}{channel}:shown", total, ex=SHOWN_SECONDS, get=True)
        render = registry.presence(channel)
        if render is None or (shown is not None and int(shown) == total):
            return
        seconds, micros = self.client.time()
        delivery.deliver(channel, NAME, seconds * 1_000_000 + micros, render(channel, total))

    def tick(self) -> None:
        counts = self.counts()
        if counts or self.reported:
            self.report(counts)
        for channel in counts:
            self.publish(channel)

    def _run(self) -> None:
        while not self.stopped.wait(PERIOD):
            try:
                self.tick()
            except RedisError as exc:
                health.failed(exc)
            except Exception:  # a failing source or owner must not end the count for good
                logger.exception("census tick failed")
            else:
                health.ok()

    def stop(self) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join()


_census: Census | None = None


def active() -> bool:
    """Whether viewers are counted across processes: Redis is configured."""
    return bool(getattr(settings, "EVENTSTREAM_REDIS", None))


def census() -> Census:
    """Return this process's census, made on first use; only when `active()`."""
    global _census
    if _census is None:
        client = redis.Redis(**settings.EVENTSTREAM_REDIS, socket_timeout=2, decode_responses=True)
        _census = Census(client)
    return _census


def watching(channel: str, here: int) -> int:
    """Return the channel's total across processes; `here` (this process's) if Redis fails."""
    if not active():
        return here
    try:
        return census().total(channel)
    except RedisError as exc:
        health.failed(exc)
        return here
