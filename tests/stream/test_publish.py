"""Publishing: now, or once the transaction commits, on the local path for these tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import transaction
from django_eventstream.views import Listener, get_listener_manager

from snake import stream


@pytest.fixture
def queued() -> Iterator[list[tuple[str, int, str]]]:
    """What a listener on channel `count-pub` is given: (name, version, fragment) each."""

    class Recording(Listener):
        def wake_threadsafe(self) -> None:  # no loop here: the queue is what we read
            pass

    listener = Recording()
    listener.channels = {"count-pub"}
    get_listener_manager().add_listener(listener)
    items: list[tuple[str, int, str]] = []
    yield items
    get_listener_manager().remove_listener(listener)


def taken(queued: list[tuple[str, int, str]]) -> list[tuple[str, int, str]]:
    [listener] = get_listener_manager().listeners_by_channel["count-pub"]
    queued.extend((e.type, e.id, e.data) for e in listener.channel_items.pop("count-pub", []))
    return queued


def test_send_delivers_at_once_with_the_version_beside_the_fragment(queued: list) -> None:
    stream.send("count-pub", "count", 7, "<p>7</p>")
    assert taken(queued) == [("count", 7, "<p>7</p>")]


@pytest.mark.django_db(transaction=True)
def test_publish_waits_for_the_commit(queued: list) -> None:
    with transaction.atomic():
        stream.publish("count-pub", "count", 1, "<p>1</p>")
        assert taken(queued) == []
    assert taken(queued) == [("count", 1, "<p>1</p>")]


@pytest.mark.django_db(transaction=True)
def test_publish_in_a_rolled_back_transaction_sends_nothing(queued: list) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        stream.publish("count-pub", "count", 1, "<p>1</p>")
        raise RuntimeError("roll back")
    assert taken(queued) == []
