from __future__ import annotations

import pytest
from django.db import transaction
from django_eventstream.views import Listener, get_listener_manager

from snake import board, channel


@pytest.fixture
def listener() -> Listener:
    """A django-eventstream listener on board "ev", as a stream would register it."""

    class Recording(Listener):
        def wake_threadsafe(self) -> None:  # no loop here: the queue is what we read
            pass

    recording = Recording()
    recording.channels = {channel.name("ev")}
    get_listener_manager().add_listener(recording)
    yield recording
    get_listener_manager().remove_listener(recording)


def queued(listener: Listener) -> list[tuple[str, int, str]]:
    """What was queued for the channel: (event name, version, fragment) each."""
    return [(e.type, e.id, e.data) for e in listener.channel_items.get(channel.name("ev"), [])]


def test_fragment_is_the_logo_with_position_and_seq() -> None:
    html = channel.render_logo(board.Position("m", 15, 20, 7))
    assert html.startswith('<div id="logo" ')
    assert 'style="left: 15px; top: 20px"' in html
    assert 'data-x="15" data-y="20" data-seq="7"' in html
    assert "\n" not in html


@pytest.mark.django_db
def test_the_snapshot_is_the_position_event_versioned_by_seq() -> None:
    board.move("snap", board.parse_direction("s"))
    position = board.current("snap")
    assert channel.snapshot(channel.name("snap")) == {
        "position": (position.seq, channel.render_logo(position))
    }


@pytest.mark.django_db(transaction=True)
def test_publish_sends_after_commit(listener: Listener) -> None:
    with transaction.atomic():
        position, _ = board.move("ev", board.parse_direction("d"))
        channel.publish("ev")
        assert queued(listener) == []
    assert queued(listener) == [("position", position.seq, channel.render_logo(position))]


@pytest.mark.django_db(transaction=True)
def test_publish_in_a_rolled_back_transaction_sends_nothing(listener: Listener) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        position, _ = board.move("ev", board.parse_direction("d"))
        channel.publish("ev")
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
        channel.publish("ev")
        channel.publish("ev")
    end = board.Position("ev", 510, 150, 2)
    assert queued(listener) == [("position", 2, channel.render_logo(end))]
    channel.publish("ev")
    assert len(queued(listener)) == 1
