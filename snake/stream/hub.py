"""Fan a channel's events out to this process's viewers: one listener per channel, not per viewer.

Each channel with viewers here has one room and one django-eventstream listener. An event is
encoded once, into one ASGI message, and offered to every viewer in one pass: no task and no
wake-up per viewer. The room learns state only from the channel's snapshot function: for a
stream's opening, and after an overflow or a Redis resync, when events may have been missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async
from asgiref.typing import HTTPResponseBodyEvent
from django import db
from django_eventstream.event import Event
from django_eventstream.views import Listener, get_listener_manager

from snake.stream import census, delivery, handoff, registry, sse
from snake.stream.flow import Flow
from snake.stream.newest import NewestQueue, newest
from snake.stream.presence import Audience
from snake.stream.registry import State
from snake.stream.tally import Tally
from snake.stream.viewer import Send, Viewer, body

ROOMS = "rooms"  # this process's viewers, as a census source
PACE_MAX = 0.05  # seconds a channel rests after a fan-out at most
REST_FACTOR = 2  # a burst gives the fan-out at most a third of the loop (bench --burst)
logger = logging.getLogger(__name__)


def _read_snapshot(channel: str) -> State:
    # A stream lives for hours: the thread that read its state must not keep a database
    # connection per viewer.
    try:
        return dict(registry.snapshot(channel))
    finally:
        db.connection.close()


read_snapshot = sync_to_async(_read_snapshot, thread_sensitive=False)


class Room:
    """One channel's viewers in this process, fed by one django-eventstream listener."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.viewers: set[Viewer] = set()
        self.versions: dict[str, int] = {}  # event name -> newest version fanned out
        # What the room knows: its last read with every event since. The listener subscribes
        # before the room's first read, so while this process hears every publish (see
        # delivery.hears_every_publish) it is the current state, and a viewer opens with it
        # without a read: a connect storm makes one read, not one per turn of the loop.
        self.known: dict[str, tuple[int, str]] = {}
        self.known_epoch: int | None = None  # delivery.epoch() of the read; None: none yet
        self.opening: HTTPResponseBodyEvent | None = None  # `known`'s opening, encoded once
        self.next_read: asyncio.Task[State] | None = None
        self.listener = Listener()
        self.listener.channels = {channel}
        self.listener.channel_items = self._queue()
        self.listener.assign_loop()
        get_listener_manager().add_listener(self.listener)
        loop = asyncio.get_running_loop()
        self.task = loop.create_task(self._run())
        self.ticker = loop.call_later(sse.KEEPALIVE_SECONDS, self._keepalive)
        # Across processes the census shows the total; a room's own count would contradict it.
        render = None if census.active() else registry.presence(channel)
        self.audience = Audience(channel, lambda: len(self.viewers), self._offer, render)

    async def open(self, viewer: Viewer) -> None:
        """Send a viewer that has joined the opening and current state, then what is newer."""
        if not self.knows():
            await self.read()
        if self.opening is None:
            self.opening = body(sse.opening(self.known).encode())
        viewer.opened_at(self.known)
        await viewer.send(self.opening)
        viewer.open = True
        viewer.flush()

    def knows(self) -> bool:
        """Whether `known` is the current state: read, and every publish heard since."""
        return self.known_epoch == delivery.epoch() and delivery.hears_every_publish()

    def learn(self, state: State) -> None:
        for name, (version, fragment) in state.items():
            if version > self.known.get(name, (-1, ""))[0]:
                self.known[name] = (version, fragment)
                self.opening = None

    async def read(self) -> State:
        """Read the snapshot for a viewer that has joined; viewers joining together share a read.

        While the room cannot trust what it knows, a read is shared only by viewers that joined
        before it started, so each viewer's state is still read after it subscribed.
        """
        if self.next_read is None:
            self.next_read = asyncio.get_running_loop().create_task(self._read())
        return await asyncio.shield(self.next_read)

    async def _read(self) -> State:
        await asyncio.sleep(0)  # let the viewers joining in this turn of the loop share it
        if not delivery.hears_every_publish():
            self.next_read = None
        try:
            return await self._fresh()
        finally:
            if self.next_read is asyncio.current_task():
                self.next_read = None

    async def _fresh(self) -> State:
        """Read the snapshot and learn it; trust it if this process hears every publish."""
        epoch, trusted = delivery.epoch(), delivery.hears_every_publish()
        state = await read_snapshot(self.channel)
        self.learn(state)
        if trusted:
            self.known_epoch = epoch
        return state

    def _queue(self) -> dict[str, list[Event]]:
        # django-eventstream appends to the list it finds for the channel (snake/stream/newest.py).
        return {self.channel: NewestQueue()}

    def _keepalive(self) -> None:
        for viewer in tuple(self.viewers):
            viewer.ping()
        self.ticker = asyncio.get_running_loop().call_later(sse.KEEPALIVE_SECONDS, self._keepalive)

    async def _run(self) -> None:
        manager = get_listener_manager()
        while True:
            await self.listener.aevent.wait()
            with manager.lock:
                items = self.listener.channel_items.get(self.channel, [])
                overflow = self.listener.overflow
                self.listener.channel_items = self._queue()
                self.listener.overflow = False
                self.listener.aevent.clear()
            # After an overflow django-eventstream dropped events past its MAX_PENDING queue,
            # maybe the last one (or Redis was away): the owner's snapshot holds the newest.
            state = await self._reread() if overflow else {}
            with handoff.fanning_out():
                await self._fan_out(newest(items, state))

    async def _reread(self) -> State:
        # A failing read must not end the room: its viewers would never get another event.
        for delay in (0.1, 0.5, 1, 2, 5):
            try:
                return await self._fresh()
            except Exception:
                logger.warning("reading %s failed; retrying", self.channel, exc_info=True)
                await asyncio.sleep(delay)
        return await self._fresh()

    async def _fan_out(self, found: dict[str, tuple[int, str]]) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        for name, (version, fragment) in found.items():
            self._offer(name, version, fragment)
        await asyncio.sleep(0)
        if self.listener.aevent.is_set():
            # Events come faster than they go out (one came in while this one went out): rest
            # REST_FACTOR times as long as the writes took, at most PACE_MAX, so that the
            # publishers' requests and the writes that had to wait get the loop, and what
            # arrives is coalesced into the next fan-out. An event that finds the room idle (a
            # lone move, or the next of a player who waited for the last) goes out at once; one
            # that arrives during a rest waits at most that.
            await asyncio.sleep(min(REST_FACTOR * (loop.time() - started), PACE_MAX))

    def _offer(self, name: str, version: int, fragment: str) -> None:
        """Encode an event once and offer it to every viewer here, unless it is not newer."""
        if version <= self.versions.get(name, -1):
            return
        self.versions[name] = version
        self.learn({name: (version, fragment)})
        message = body(sse.encode(name, fragment).encode())
        for viewer in tuple(self.viewers):
            viewer.offer(name, version, message)

    def close(self) -> None:
        self.task.cancel()
        self.ticker.cancel()
        self.audience.close()
        get_listener_manager().remove_listener(self.listener)


_rooms: dict[str, Room] = {}


def join(channel: str, send: Send, flow: Flow | None = None) -> tuple[Room, Viewer]:
    """Add a viewer to the channel's room; events wait for it until `Room.open`."""
    room = _rooms.get(channel)
    if room is None:
        room = _rooms[channel] = Room(channel)
        if census.active() and ROOMS not in census.census().sources:
            census.census().add(ROOMS, counts)
    viewer = Viewer(send, flow)
    viewer.on_drop = lambda: tally.count(dropped=1)
    room.viewers.add(viewer)
    room.audience.changed()
    tally.count(opened=1)
    logger.debug("stream opened on %s (%d here)", channel, len(room.viewers))
    return room, viewer


def leave(channel: str, viewer: Viewer) -> None:
    viewer.close()
    room = _rooms.get(channel)
    if room is not None and viewer in room.viewers:
        room.viewers.discard(viewer)
        room.audience.changed()
        tally.count(closed=1)
        logger.debug("stream closed on %s (%d left)", channel, len(room.viewers))
        if not room.viewers:
            room.close()
            del _rooms[channel]


def viewer_count() -> int:
    return sum(len(room.viewers) for room in _rooms.values())


def counts() -> dict[str, int]:
    """Return channel -> how many watch it in this process now (from any thread)."""
    # dict() copies under the GIL: the loop's thread may add or drop a room meanwhile.
    return {channel: len(room.viewers) for channel, room in dict(_rooms).items()}


def watching(channel: str) -> int:
    """Return how many watch `channel`: in every process where Redis counts, else in this one."""
    room = _rooms.get(channel)  # read from any thread: a dict lookup and a len() under the GIL
    return census.watching(channel, 0 if room is None else len(room.viewers))


tally = Tally(viewer_count)


async def stream(channel: str) -> AsyncIterator[bytes]:
    """Yield the stream's bytes: the opening and current state, then newer events only."""
    # A one-slot queue is the send: while the reader has not taken a message, the viewer
    # holds the newest of each name, as it would on a full socket.
    queue: asyncio.Queue[HTTPResponseBodyEvent] = asyncio.Queue(maxsize=1)
    # Join before reading the state, so that no event can fall between the two.
    room, viewer = join(channel, queue.put)
    try:
        await room.open(viewer)
        while True:
            yield (await queue.get())["body"]
    finally:
        leave(channel, viewer)
