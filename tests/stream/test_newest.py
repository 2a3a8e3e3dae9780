from __future__ import annotations

from django_eventstream.event import Event

from snake.stream.newest import NewestQueue, newest


def event(name: str, version: int | None) -> Event:
    return Event("ch", name, f"{name}{version}", id=version)


def test_the_queue_keeps_each_names_newest_in_first_arrival_order() -> None:
    queue = NewestQueue()
    for each in (event("a", 1), event("b", 1), event("a", 3), event("a", 2), event("b", 2)):
        queue.append(each)
    assert [(e.type, e.id) for e in queue] == [("a", 3), ("b", 2)]


def test_the_queue_takes_an_unversioned_event_only_before_a_versioned_one() -> None:
    queue = NewestQueue()
    queue.append(event("a", None))
    queue.append(event("a", 1))
    queue.append(event("a", None))
    assert [e.id for e in queue] == [1]


def test_newest_picks_each_name_from_events_and_snapshot() -> None:
    events = [event("a", 5), event("b", 2)]
    state = {"a": (4, "a4"), "b": (3, "b3"), "c": (1, "c1")}
    assert newest(events, state) == {"a": (5, "a5"), "b": (3, "b3"), "c": (1, "c1")}
