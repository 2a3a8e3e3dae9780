"""Fan a board's positions out to this process's viewers: one listener per board, not per viewer.

Each board with viewers here has one django-eventstream listener. An event is encoded to bytes
once and offered to every viewer, who keeps only the newest (a slow viewer skips positions
rather than queueing them) and never one at or below a seq it was sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable

from asgiref.sync import sync_to_async
from django_eventstream.views import Listener, get_listener_manager

from snake import board, events

KEEPALIVE = events.KEEPALIVE.encode()
PACE_MAX = 0.05  # seconds a board rests after a fan-out at most


class Viewer:
    __slots__ = ("sent", "pending", "pending_seq", "wake")

    def __init__(self) -> None:
        self.sent = -1
        self.pending: bytes | None = None
        self.pending_seq = -1
        self.wake = asyncio.Event()

    def offer(self, seq: int, chunk: bytes) -> None:
        if seq > self.sent and seq > self.pending_seq:
            self.pending, self.pending_seq = chunk, seq
            self.wake.set()

    def ping(self) -> None:
        if self.pending is None:
            self.pending = KEEPALIVE
            self.wake.set()


class Room:
    """One board's viewers in this process, fed by one django-eventstream listener."""

    def __init__(self, slug: str) -> None:
        self.slug = slug
        self.viewers: set[Viewer] = set()
        self.seq = -1
        self.next_read: asyncio.Task[board.Position] | None = None
        self.listener = Listener()
        self.listener.channels = {events.channel(slug)}
        self.listener.assign_loop()
        get_listener_manager().add_listener(self.listener)
        loop = asyncio.get_running_loop()
        self.task = loop.create_task(self._run())
        self.ticker = loop.call_later(events.KEEPALIVE_SECONDS, self._keepalive)

    def read(self) -> Awaitable[board.Position]:
        """Read the board for a viewer that has joined; viewers joining together share a read.

        A read is shared only by viewers that joined before it started, so each viewer's state
        is still read after it subscribed (a connect storm makes a few reads, not thousands).
        """
        if self.next_read is None:
            self.next_read = asyncio.get_running_loop().create_task(self._read())
        return asyncio.shield(self.next_read)

    async def _read(self) -> board.Position:
        await asyncio.sleep(0)  # let the viewers joining in this turn of the loop share it
        self.next_read = None
        return await read_position(self.slug)

    def _keepalive(self) -> None:
        for viewer in self.viewers:
            viewer.ping()
        self.ticker = asyncio.get_running_loop().call_later(
            events.KEEPALIVE_SECONDS, self._keepalive
        )

    async def _run(self) -> None:
        manager, name = get_listener_manager(), events.channel(self.slug)
        while True:
            await self.listener.aevent.wait()
            with manager.lock:
                items = self.listener.channel_items.get(name, [])
                overflow = self.listener.overflow
                self.listener.channel_items = {}
                self.listener.overflow = False
                self.listener.aevent.clear()
            # Publishes from several workers can arrive out of order: pick by seq.
            newest = max(items, key=events.event_seq, default=None)
            seq, fragment = -1, ""
            if newest is not None:
                seq, fragment = events.event_seq(newest), newest.data
            if overflow:
                # django-eventstream dropped events past its MAX_PENDING queue, maybe the
                # last one: the database holds it, since events are sent after commit.
                position = await read_position(self.slug)
                if position.seq > seq:
                    seq, fragment = position.seq, events.render_logo(position)
            if seq > self.seq:
                self.seq = seq
                await self._fan_out(seq, events.encode(fragment).encode())

    async def _fan_out(self, seq: int, chunk: bytes) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        for viewer in self.viewers:
            viewer.offer(seq, chunk)
        # The woken viewers run before we do again (the loop is FIFO): then rest as long as
        # their writes took, at most PACE_MAX. Moves arriving meanwhile are coalesced into the
        # next fan-out, so a burst cannot keep the loop busy writing stale positions while
        # the moves themselves wait. A lone move is never delayed.
        await asyncio.sleep(0)
        await asyncio.sleep(min(loop.time() - started, PACE_MAX))

    def close(self) -> None:
        self.task.cancel()
        self.ticker.cancel()
        get_listener_manager().remove_listener(self.listener)


_rooms: dict[str, Room] = {}
read_position = sync_to_async(events.read_position, thread_sensitive=False)


def join(slug: str) -> tuple[Room, Viewer]:
    room = _rooms.get(slug)
    if room is None:
        room = _rooms[slug] = Room(slug)
    viewer = Viewer()
    room.viewers.add(viewer)
    return room, viewer


def leave(slug: str, viewer: Viewer) -> None:
    room = _rooms.get(slug)
    if room is not None:
        room.viewers.discard(viewer)
        if not room.viewers:
            room.close()
            del _rooms[slug]


def viewer_count() -> int:
    return sum(len(room.viewers) for room in _rooms.values())


async def stream(slug: str) -> AsyncIterator[bytes]:
    """Yield the stream's bytes: the opening and current position, then newer ones only."""
    # Join before reading the state, so that no move can fall between the two.
    room, viewer = join(slug)
    try:
        position = await room.read()
        viewer.sent = position.seq
        yield events.opening(position).encode()
        while True:
            await viewer.wake.wait()
            viewer.wake.clear()
            chunk, seq = viewer.pending, viewer.pending_seq
            viewer.pending = None
            if chunk is KEEPALIVE:
                yield chunk
            elif chunk is not None and seq > viewer.sent:
                viewer.sent = seq
                yield chunk
    finally:
        leave(slug, viewer)
