from __future__ import annotations

import pytest
from django.db import transaction
from django_eventstream.views import Listener, get_listener_manager

from snake import board, events


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
