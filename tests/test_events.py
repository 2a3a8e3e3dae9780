from __future__ import annotations

import asyncio

import pytest
from django.db import transaction
from django_eventstream.views import MAX_PENDING, Listener, get_listener_manager

from snake import board, events, fanout


@pytest.fixture
def listener() -> Listener:
    """A django-eventstream listener on board "ev", as a stream would register it."""

    class Recording(Listener):
        def wake_threadsafe(self) -> None:  # no loop here: the queue is what we read
            pass

    recording = Recording()
    recording.channels = {events.channel("ev")}
    get_listener_manager().add_listener(recording)
    yield recording
    get_listener_manager().remove_listener(recording)


def queued(listener: Listener) -> list[str]:
    return [e.data for e in listener.channel_items.get(events.channel("ev"), [])]


def test_fragment_is_the_logo_with_position_and_seq() -> None:
    html = events.render_logo(board.Position("m", 15, 20, 7))
    assert html.startswith('<div id="logo" ')
    assert 'style="left: 15px; top: 20px"' in html
    assert 'data-x="15" data-y="20" data-seq="7"' in html
    assert "\n" not in html


def test_event_seq_reads_the_fragment() -> None:
    fragment = events.render_logo(board.Position("m", 1, 2, 42))
    assert events.event_seq(events.Event("c", "position", fragment)) == 42
    assert events.event_seq(events.Event("c", "position", "<p>no seq</p>")) == -1


@pytest.mark.django_db(transaction=True)
def test_publish_sends_after_commit(listener: Listener) -> None:
    with transaction.atomic():
        position, _ = board.move("ev", board.parse_direction("d"))
        events.publish("ev")
        assert queued(listener) == []
    assert queued(listener) == [events.render_logo(position)]


@pytest.mark.django_db(transaction=True)
def test_publish_in_a_rolled_back_transaction_sends_nothing(listener: Listener) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        position, _ = board.move("ev", board.parse_direction("d"))
        events.publish("ev")
        raise RuntimeError("roll back")
    assert queued(listener) == []
    assert board.current("ev").seq == 0


@pytest.mark.django_db(transaction=True)
def test_publishes_leave_in_seq_order_and_never_repeat(listener: Listener) -> None:
    # Two moves commit before either publish runs (as with concurrent requests): the first
    # publish carries the newest state, the second finds nothing newer and sends nothing.
    with transaction.atomic():
        board.move("ev", board.parse_direction("d"))
        board.move("ev", board.parse_direction("d"))
        events.publish("ev")
        events.publish("ev")
    assert queued(listener) == [events.render_logo(board.Position("ev", 510, 150, 2))]
    events.publish("ev")
    assert len(queued(listener)) == 1


def collect(slug: str, feed, count: int) -> list[str]:
    """Run the stream generator, call feed() once it is subscribed, return `count` chunks."""

    async def run() -> list[str]:
        stream = events._positions(slug)
        chunks = [await anext(stream)]
        await asyncio.to_thread(feed)
        while len(chunks) < count:
            chunks.append(await asyncio.wait_for(anext(stream), 10))
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
