"""Fan a board's positions out to this process's viewers: one listener per board, not per viewer.

Each board with viewers here has one django-eventstream listener. An event is encoded once, into
one ASGI message, and written straight to every viewer in one pass: no task and no wake-up per
viewer. A viewer that cannot take a write (its send is waiting, or snake.flow says its buffer
is full) keeps only the newest position for when it can, and is dropped if it stays stuck. No
viewer is sent a seq at or below one it was sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable

from asgiref.sync import sync_to_async
from django_eventstream.views import Listener, get_listener_manager

from snake import board, events
from snake.flow import Flow
from snake.tally import Tally
from snake.viewer import Message, Send, Viewer, body

PACE_MAX = 0.05  # seconds a board rests after a fan-out at most
logger = logging.getLogger(__name__)


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

    async def open(self, viewer: Viewer) -> None:
        """Send a viewer that has joined the opening and current state, then what is newer."""
        position = await self.read()
        viewer.sent = max(viewer.sent, position.seq)
        await viewer.send(body(events.opening(position).encode()))
        viewer.open = True
        viewer.flush()

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
        for viewer in tuple(self.viewers):
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
                position = await self._reread()
                if position.seq > seq:
                    seq, fragment = position.seq, events.render_logo(position)
            if seq > self.seq:
                self.seq = seq
                await self._fan_out(seq, body(events.encode(fragment).encode()))

    async def _reread(self) -> board.Position:
        # A failing read must not end the room: its viewers would never get another move.
        for delay in (0.1, 0.5, 1, 2, 5):
            try:
                return await read_position(self.slug)
            except Exception:
                logger.warning("reading board %s failed; retrying", self.slug, exc_info=True)
                await asyncio.sleep(delay)
        return await read_position(self.slug)

    async def _fan_out(self, seq: int, message: Message) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        for viewer in tuple(self.viewers):
            viewer.offer(seq, message)
        # Then rest as long as the writes took, at most PACE_MAX (the writes that had to wait
        # run meanwhile). Moves arriving meanwhile are coalesced into the next fan-out, so a
        # burst cannot keep the loop busy writing stale positions while the moves themselves
        # wait. A lone move is never delayed.
        await asyncio.sleep(0)
        await asyncio.sleep(min(loop.time() - started, PACE_MAX))

    def close(self) -> None:
        self.task.cancel()
        self.ticker.cancel()
        get_listener_manager().remove_listener(self.listener)


_rooms: dict[str, Room] = {}
read_position = sync_to_async(events.read_position, thread_sensitive=False)


def join(slug: str, send: Send, flow: Flow | None = None) -> tuple[Room, Viewer]:
    """Add a viewer to the board's room; positions wait for it until `Room.open`."""
    room = _rooms.get(slug)
    if room is None:
        room = _rooms[slug] = Room(slug)
    viewer = Viewer(send, flow)
    viewer.on_drop = lambda: tally.count(dropped=1)
    room.viewers.add(viewer)
    tally.count(opened=1)
    logger.debug("stream opened on board %s (%d here)", slug, len(room.viewers))
    return room, viewer


def leave(slug: str, viewer: Viewer) -> None:
    viewer.close()
    room = _rooms.get(slug)
    if room is not None and viewer in room.viewers:
        room.viewers.discard(viewer)
        tally.count(closed=1)
        logger.debug("stream closed on board %s (%d left)", slug, len(room.viewers))
        if not room.viewers:
            room.close()
            del _rooms[slug]


def viewer_count() -> int:
    return sum(len(room.viewers) for room in _rooms.values())


tally = Tally(viewer_count)


async def stream(slug: str) -> AsyncIterator[bytes]:
    """Yield the stream's bytes: the opening and current position, then newer ones only."""
    # A one-slot queue is the send: while the reader has not taken a message, the viewer
    # holds the newest, as it would on a full socket.
    queue: asyncio.Queue[Message] = asyncio.Queue(maxsize=1)
    # Join before reading the state, so that no move can fall between the two.
    room, viewer = join(slug, queue.put)
    try:
        await room.open(viewer)
        while True:
            yield (await queue.get())["body"]
    finally:
        leave(slug, viewer)
