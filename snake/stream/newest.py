"""Newest wins: what a room keeps of the events queued for it, and what it fans out."""

from __future__ import annotations

from django_eventstream.event import Event

from snake.stream.registry import State


def version(event: Event) -> int:
    return int(event.id) if event.id is not None else -1


def newest(events: list[Event], state: State) -> dict[str, tuple[int, str]]:
    """Pick each name's newest, from the events and a snapshot read after them (if any).

    Publishes from several workers can arrive out of order, and a snapshot read after an
    overflow may be newer than every event that was queued, or older than one.
    """
    candidates = [(e.type, version(e), str(e.data)) for e in events]
    candidates += [(name, v, fragment) for name, (v, fragment) in state.items()]
    found: dict[str, tuple[int, str]] = {}
    for name, v, fragment in candidates:
        if v > found.get(name, (-1, ""))[0]:
            found[name] = (v, fragment)
    return found


class NewestQueue(list[Event]):
    """A listener's queue of one channel that holds each name's newest event only.

    django-eventstream queues at most MAX_PENDING (10) events per listener, then drops the rest
    and flags an overflow, after which the room must read its snapshot again: in a burst of
    moves that was a database read every few fan-outs. A room fans out each name's newest
    only, so it queues nothing else, and its queue fills only with more than 10 names.
    """

    def append(self, event: Event) -> None:
        for i, queued in enumerate(self):
            if queued.type == event.type:
                if version(event) >= version(queued):
                    self[i] = event
                return
        super().append(event)
