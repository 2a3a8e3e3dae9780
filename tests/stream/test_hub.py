from __future__ import annotations

import asyncio
import re
import socket
import time

import pytest
from django_eventstream.views import MAX_PENDING, get_listener_manager

from snake import board, events, fanout, flow, hub
from snake.models import Board


def collect(slug: str, feed, until=None) -> list[str]:
    """Run the stream generator, call feed() once it is subscribed, return the opening and the
    chunks after it up to the first that satisfies `until` (none without `until`)."""

    async def run() -> list[str]:
        stream = hub.stream(slug)
        chunks = [(await anext(stream)).decode()]
        await asyncio.to_thread(feed)
        while until is not None and (len(chunks) == 1 or not until(chunks[-1])):
            chunks.append((await asyncio.wait_for(anext(stream), 10)).decode())
        await stream.aclose()
        return chunks

    return asyncio.run(run())


def seqs(chunks: list[str]) -> list[int]:
    return [int(seq) for chunk in chunks for seq in re.findall(r'data-seq="(\d+)"', chunk)]


def has_seq(seq: int):
    return lambda chunk: f'data-seq="{seq}"' in chunk


def send(position: board.Position) -> None:
    fanout.deliver(events.channel(position.slug), "position", events.render_logo(position))


@pytest.mark.django_db(transaction=True)
def test_stream_opens_with_the_current_state() -> None:
    board.move("open", board.parse_direction("s"))
    [first] = collect("open", lambda: None)
    assert first.startswith(":" + " " * 2048)
    assert "event: stream-open\n" in first
    assert first.endswith(f"event: position\ndata: {events.render_logo(board.current('open'))}\n\n")


@pytest.mark.django_db(transaction=True)
def test_stream_drops_stale_and_coalesces_to_the_newest() -> None:
    def feed() -> None:
        send(board.Position("co", 1, 1, 3))
        send(board.Position("co", 1, 1, 2))  # finished late: older than what was queued
        send(board.Position("co", 9, 9, 5))
        send(board.Position("co", 1, 1, 4))

    chunks = collect("co", feed, has_seq(5))
    # Whatever a viewer is sent, seqs only grow and it ends on the newest.
    assert seqs(chunks) == sorted(set(seqs(chunks))) and seqs(chunks)[-1] == 5


@pytest.mark.django_db(transaction=True)
def test_stream_never_repeats_a_seq_it_has_sent() -> None:
    board.move("rep", board.parse_direction("d"))  # the stream opens at seq 1

    def feed() -> None:
        send(board.Position("rep", 0, 0, 1))
        send(board.Position("rep", 510, 150, 2))

    chunks = collect("rep", feed, has_seq(2))
    assert seqs(chunks) == [1, 2]


@pytest.mark.django_db(transaction=True)
def test_stream_recovers_the_last_state_after_django_eventstream_overflow() -> None:
    # More moves than django-eventstream queues per listener: it drops the rest, including
    # the last one; the stream must read the last state back from the database.
    def feed() -> None:
        for _ in range(MAX_PENDING + 5):
            position, _ = board.move("over", board.parse_direction("d"))
            send(position)

    chunks = collect("over", feed, has_seq(MAX_PENDING + 5))
    assert seqs(chunks) == sorted(set(seqs(chunks)))


@pytest.mark.django_db(transaction=True)
def test_idle_streams_get_keep_alives(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "KEEPALIVE_SECONDS", 0.05)
    _, ping = collect("idle", lambda: None, lambda chunk: True)
    assert ping == "event: keep-alive\ndata:\n\n"


@pytest.mark.django_db(transaction=True)
def test_one_listener_per_board_and_none_left_when_viewers_go() -> None:
    manager = get_listener_manager()

    async def run() -> tuple[int, int]:
        streams = [hub.stream("shared") for _ in range(5)]
        for stream in streams:
            await anext(stream)
        during = len(manager.listeners_by_channel.get(events.channel("shared"), ()))
        for stream in streams:
            await stream.aclose()
        return during, hub.viewer_count()

    assert asyncio.run(run()) == (1, 0)
    assert events.channel("shared") not in manager.listeners_by_channel


@pytest.mark.django_db(transaction=True)
def test_viewers_joining_together_share_one_read(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[str] = []
    real = hub.read_position

    async def counting(slug: str) -> board.Position:
        reads.append(slug)
        return await real(slug)

    monkeypatch.setattr(hub, "read_position", counting)

    async def run() -> None:
        storm = [hub.stream("storm") for _ in range(50)]
        await asyncio.gather(*(anext(stream) for stream in storm))
        late = hub.stream("storm")  # joins after that read began: it gets its own
        await anext(late)
        for stream in [*storm, late]:
            await stream.aclose()

    asyncio.run(run())
    assert reads == ["storm", "storm"]


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


@pytest.mark.django_db(transaction=True)
def test_a_viewer_that_stops_reading_holds_no_one_up_and_is_dropped(settings) -> None:
    settings.SNAKE_STUCK_VIEWER_SECONDS = 0.3

    async def run() -> tuple[list[str], int, Writer, bool]:
        loop = asyncio.get_running_loop()
        # A real TCP connection whose far end is never even accepted, both buffers kept small.
        listening = small_socket(socket.SO_RCVBUF)
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        client = small_socket(socket.SO_SNDBUF)
        client.connect(listening.getsockname())
        transport, writer = await loop.create_connection(Writer, sock=client)
        transport.set_write_buffer_limits(high=4096)
        room, stuck = hub.join("stuck", writer.send, flow.AsyncioFlow(transport))
        await room.open(stuck)
        reader = hub.stream("stuck")
        chunks = [(await anext(reader)).decode()]

        async def read() -> None:
            async for chunk in reader:
                chunks.append(chunk.decode())

        reading = asyncio.ensure_future(read())

        def feed() -> int:
            # Keep publishing until the stuck viewer is dropped; store the last state too, for
            # when django-eventstream's queue overflows and the room reads it back.
            seq = 0
            while not transport.is_closing() and seq < 50_000:
                seq += 1
                send(board.Position("stuck", 500 + seq % 2 * 5, 150, seq))
                time.sleep(0.0005)
            Board.objects.create(slug="stuck", x=500, y=150, seq=seq + 1)
            send(board.Position("stuck", 500, 150, seq + 1))
            return seq + 1

        last = await asyncio.to_thread(feed)
        for _ in range(100):
            if seqs(chunks)[-1] == last:
                break
            await asyncio.sleep(0.1)
        reading.cancel()
        hub.leave("stuck", stuck)  # as its consumer would on the disconnect the drop causes
        listening.close()
        return chunks, last, writer, transport.is_closing()

    chunks, last, writer, dropped = asyncio.run(run())
    assert seqs(chunks)[-1] == last  # the other viewer got every move up to the last
    assert 0 < writer.most_buffered <= 4096 + 1024  # the high-water mark and one event at most
    assert dropped
