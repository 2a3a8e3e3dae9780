from __future__ import annotations

import asyncio

import pytest
from django_eventstream.views import MAX_PENDING, get_listener_manager

from snake import board, events, fanout, hub


def collect(slug: str, feed, count: int) -> list[str]:
    """Run the stream generator, call feed() once it is subscribed, return `count` chunks."""

    async def run() -> list[str]:
        stream = hub.stream(slug)
        chunks = [(await anext(stream)).decode()]
        await asyncio.to_thread(feed)
        while len(chunks) < count:
            chunks.append((await asyncio.wait_for(anext(stream), 10)).decode())
        await stream.aclose()
        return chunks

    return asyncio.run(run())


def send(position: board.Position) -> None:
    fanout.deliver(events.channel(position.slug), "position", events.render_logo(position))


@pytest.mark.django_db(transaction=True)
def test_stream_opens_with_the_current_state() -> None:
    board.move("open", board.parse_direction("s"))
    [first] = collect("open", lambda: None, 1)
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

    _, newest = collect("co", feed, 2)
    assert 'data-seq="5"' in newest


@pytest.mark.django_db(transaction=True)
def test_stream_never_repeats_a_seq_it_has_sent() -> None:
    board.move("rep", board.parse_direction("d"))  # the stream opens at seq 1

    def feed() -> None:
        send(board.Position("rep", 0, 0, 1))
        send(board.Position("rep", 510, 150, 2))

    first, second = collect("rep", feed, 2)
    assert 'data-seq="1"' in first and 'data-seq="2"' in second


@pytest.mark.django_db(transaction=True)
def test_stream_recovers_the_last_state_after_django_eventstream_overflow() -> None:
    # More moves than django-eventstream queues per listener: it drops the rest, including
    # the last one; the stream must read the last state back from the database.
    def feed() -> None:
        for _ in range(MAX_PENDING + 5):
            position, _ = board.move("over", board.parse_direction("d"))
            send(position)

    _, last = collect("over", feed, 2)
    assert f'data-seq="{MAX_PENDING + 5}"' in last


@pytest.mark.django_db(transaction=True)
def test_idle_streams_get_keep_alives(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "KEEPALIVE_SECONDS", 0.05)
    _, ping = collect("idle", lambda: None, 2)
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
