"""A django-eventstream listener for tests that read its queue instead of streaming it."""

from __future__ import annotations

from django_eventstream.views import Listener


class Recording(Listener):
    """A django-eventstream listener no loop wakes: what is queued for it stays to be read."""

    def wake_threadsafe(self) -> None:
        pass

    def queued(self, channel: str) -> list[tuple[str, int, str]]:
        """Take what was queued on `channel`: (event name, version, fragment) each."""
        return [(e.type, e.id, e.data) for e in self.channel_items.pop(channel, [])]
