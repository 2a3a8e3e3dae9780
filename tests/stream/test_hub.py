"""A channel's room in this process: opening, newest-wins, overflow, keep-alives, stuck viewers.

Every test streams the counter channel (tests/stream/counter.py), not the board.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

import pytest
from django_eventstream.views import MAX_PENDING, get_listener_manager

from snake.stream import delivery, flow, hub, sse
from tests.stream.conftest import counts
from tests.stream.counter import Counter, fragment


def send(channel: str, n: int, name: str = "count") -> None:
    delivery.deliver(channel, name, n, fragment(name, n))


async def settled(channel: str) -> None:
    """Wait until the room has taken every queued event (and so offered it to its viewers)."""
    room = hub._rooms[channel]
    while room.listener.channel_items.get(channel) or room.listener.aevent.is_set():
        await asyncio.sleep(0.005)


def collect(
    channel: str, feed: Callable[[], object], until: Callable[[list[str]], bool]
) -> list[str]:
    """Open a stream, run feed() in the loop once it is open, return its chunks up to `until`."""

    async def run() -> list[str]:
        stream = hub.stream(channel)
        chunks = [(await anext(stream)).decode()]
        result = feed()
        if asyncio.iscoroutine(result):
            await result
        while not until(chunks):
            chunks.append((await asyncio.wait_for(anext(stream), 10)).decode())
        await stream.aclose()
        return chunks

    return asyncio.run(run())


def test_a_stream_opens_with_the_snapshot(counter: Counter) -> None:
    counter.set("count-open", "count", 4)
    [first] = collect("count-open", lambda: None, lambda chunks: True)
    assert first == sse.opening(counter.snapshot("count-open"))
    assert first.startswith(":" + " " * 2048 + "\n\nevent: stream-open\n")
    assert first.endswith(f"event: count\ndata: {fragment('count', 4)}\n\nevent: other\n"
                          f"data: {fragment('other', 0)}\n\n")  # fmt: skip


def test_an_event_older_than_one_sent_is_never_sent(counter: Counter) -> None:
    async def feed() -> None:
        for n in (3, 2, 5, 4):  # each in a fan-out of its own: 2 and 4 come after newer ones
            send("count-stale", n)
            await settled("count-stale")

    chunks = collect("count-stale", feed, lambda chunks: 5 in counts(chunks))
    assert counts(chunks) == [0, 3, 5]


def test_the_version_of_the_opening_is_never_sent_again(counter: Counter) -> None:
    counter.set("count-rep", "count", 1)

    async def feed() -> None:
        send("count-rep", 1)  # published before the stream read its snapshot, arriving after
        await settled("count-rep")
        send("count-rep", 2)

    chunks = collect("count-rep", feed, lambda chunks: 2 in counts(chunks))
    assert counts(chunks) == [1, 2]


def test_names_are_apart_each_newest_wins(counter: Counter) -> None:
    def feed() -> None:
        for n in (1, 2, 3):
            send("count-names", n, "other")
        send("count-names", 1)

    chunks = collect("count-names", feed, lambda chunks: 1 in counts(chunks, "count"))
    assert counts(chunks, "other") == [0, 3]  # the opening, then the newest of one batch
    assert counts(chunks, "count") == [0, 1]


def test_a_burst_of_one_name_queues_only_its_newest_and_never_overflows(
    counter: Counter,
) -> None:
    last = MAX_PENDING + 5

    def feed() -> None:
        # Published from the loop's own thread, so the room cannot drain between them:
        # django-eventstream's own queue would take MAX_PENDING and drop the rest, the last
        # one included, and the room would have to read its snapshot again.
        for n in range(1, last + 1):
            send("count-burst", n)
        listener = hub._rooms["count-burst"].listener
        assert not listener.overflow
        assert [event.id for event in listener.channel_items["count-burst"]] == [last]

    chunks = collect("count-burst", feed, lambda chunks: last in counts(chunks))
    assert counts(chunks) == [0, last]


def test_the_newest_state_is_read_back_after_an_overflow(counter: Counter) -> None:
    def feed() -> None:
        # A Redis resync flags every room as overflowed, as django-eventstream does when its
        # queue is full: what was missed is in the snapshot only.
        counter.set("count-over", "count", 7)
        delivery.resync_local_viewers(get_listener_manager())

    chunks = collect("count-over", feed, lambda chunks: 7 in counts(chunks))
    assert counts(chunks) == [0, 7]


def test_idle_streams_get_keep_alives(counter: Counter, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse, "KEEPALIVE_SECONDS", 0.05)
    _, ping = collect("count-idle", lambda: None, lambda chunks: len(chunks) == 2)
    assert ping == sse.KEEPALIVE


def test_one_listener_per_channel_and_none_left_when_viewers_go(counter: Counter) -> None:
    manager = get_listener_manager()

    async def run() -> tuple[int, int]:
        streams = [hub.stream("count-shared") for _ in range(5)]
        for stream in streams:
            await anext(stream)
        during = len(manager.listeners_by_channel.get("count-shared", ()))
        for stream in streams:
            await stream.aclose()
        return during, hub.viewer_count()

    assert asyncio.run(run()) == (1, 0)
    assert "count-shared" not in manager.listeners_by_channel


def counted_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    reads: list[str] = []
    real = hub.read_snapshot

    async def counting(channel: str) -> object:
        reads.append(channel)
        return await real(channel)

    monkeypatch.setattr(hub, "read_snapshot", counting)
    return reads


def storm_then_late(
    counter: Counter, channel: str, before_late: Callable[[], object] = lambda: None
) -> str:
    """50 viewers join together, a move is published, one more joins: the late one's opening."""

    async def run() -> str:
        storm = [hub.stream(channel) for _ in range(50)]
        await asyncio.gather(*(anext(stream) for stream in storm))
        counter.bump(channel)
        await asyncio.gather(*(anext(stream) for stream in storm))  # the move, fanned out
        before_late()
        late = hub.stream(channel)
        opening = (await anext(late)).decode()
        for stream in [*storm, late]:
            await stream.aclose()
        return opening

    return asyncio.run(run())


def test_viewers_joining_a_room_that_knows_its_state_read_nothing(
    counter: Counter, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = counted_reads(monkeypatch)
    late = storm_then_late(counter, "count-storm")
    assert reads == ["count-storm"]  # 50 joining together, one read; the late one, none
    assert counts(late) == [1]  # the room's state: its read and the move since


def test_a_room_that_may_have_missed_publishes_reads_for_each_joiner(
    counter: Counter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As while Redis is down: other workers' moves may not have reached the room.
    deaf = lambda: monkeypatch.setattr(delivery, "hears_every_publish", lambda: False)  # noqa: E731
    reads = counted_reads(monkeypatch)
    late = storm_then_late(counter, "count-deaf", before_late=deaf)
    assert reads == ["count-deaf", "count-deaf"]  # the late one's own
    assert counts(late) == [1]
    joining_apart = storm_then_late(counter, "count-deaf-2")
    assert reads[2:] == ["count-deaf-2"] * 2  # the storm shares one; the late one reads again
    assert counts(joining_apart) == [1]


def test_a_room_stops_trusting_its_state_when_the_epoch_moves(
    counter: Counter, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = counted_reads(monkeypatch)

    async def run() -> str:
        first = hub.stream("count-epoch")
        await anext(first)
        counter.set("count-epoch", "count", 7)  # a publish this process never heard
        delivery._hearing(True)  # as a Redis reconnect does
        late = hub.stream("count-epoch")
        opening = (await anext(late)).decode()
        for stream in (first, late):
            await stream.aclose()
        return opening

    assert counts(asyncio.run(run())) == [7]
    assert reads == ["count-epoch", "count-epoch"]


class Writer(asyncio.Protocol):
    """A client connection with uvicorn's flow control: send waits while the buffer is full."""

    def __init__(self) -> None:
        self.writable = asyncio.Event()
        self.writable.set()
        self.most_buffered = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    async def send(self, message: dict) -> None:
        await self.writable.wait()
        self.transport.write(message["body"])
        self.most_buffered = max(self.most_buffered, self.transport.get_write_buffer_size())


def small_socket(option: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, option, 4096)
    return sock


async def stuck_connection() -> tuple[socket.socket, asyncio.Transport, Writer]:
    """A real TCP connection whose far end is never even accepted, both buffers kept small:
    (the listening socket, the writing end's transport, its Writer)."""
    listening = small_socket(socket.SO_RCVBUF)
    listening.bind(("127.0.0.1", 0))
    listening.listen()
    client = small_socket(socket.SO_SNDBUF)
    client.connect(listening.getsockname())
    loop = asyncio.get_running_loop()
    transport, writer = await loop.create_connection(Writer, sock=client)
    transport.set_write_buffer_limits(high=4096)
    return listening, transport, writer


def test_a_viewer_that_stops_reading_holds_no_one_up_and_is_dropped(
    counter: Counter, settings: object
) -> None:
    settings.SNAKE_STUCK_VIEWER_SECONDS = 0.3

    async def run() -> tuple[list[str], int, Writer, bool]:
        listening, transport, writer = await stuck_connection()
        room, stuck = hub.join("count-stuck", writer.send, flow.AsyncioFlow(transport))
        await room.open(stuck)
        reader = hub.stream("count-stuck")
        chunks = [(await anext(reader)).decode()]

        async def read() -> None:
            async for chunk in reader:
                chunks.append(chunk.decode())

        reading = asyncio.ensure_future(read())

        def feed() -> int:
            # Keep publishing until the stuck viewer is dropped; store the last count too, for
            # when django-eventstream's queue overflows and the room reads it back.
            n = 0
            while not transport.is_closing() and n < 50_000:
                n += 1
                send("count-stuck", n)
                time.sleep(0.0005)
            counter.set("count-stuck", "count", n + 1)
            send("count-stuck", n + 1)
            return n + 1

        last = await asyncio.to_thread(feed)
        for _ in range(100):
            if counts(chunks)[-1] == last:
                break
            await asyncio.sleep(0.1)
        reading.cancel()
        hub.leave("count-stuck", stuck)  # as its consumer would on the disconnect the drop causes
        listening.close()
        return chunks, last, writer, transport.is_closing()

    chunks, last, writer, dropped = asyncio.run(run())
    assert counts(chunks)[-1] == last  # the other viewer got every event up to the last
    assert 0 < writer.most_buffered <= 4096 + 1024  # the high-water mark and one event at most
    assert dropped
