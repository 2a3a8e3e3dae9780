"""Tell a channel's viewers how many watch it: at most one update a period, never one per join.

A room tells its `Audience` whenever a viewer comes or goes; the audience counts once the period
since its last update has passed, and shows the count only if it changed. A connect storm of
10,000 viewers is one update, not 10,000. The fragment is the channel owner's
(`registry.presence`): the engine counts, the owner says how a count looks. Where Redis counts
across processes (snake.stream.census), the census shows the total instead and rooms show none.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from snake.stream.registry import Presence

NAME = "presence"  # the event's name, on every channel whose owner shows its audience
PERIOD = 1.0  # seconds between two updates of one channel, at least

# (event name, version, fragment): how the room offers an event to its viewers
Show = Callable[[str, int, str], None]


class Audience:
    """One channel's presence in this process: `count()` shown through `show` when it changes."""

    def __init__(
        self, channel: str, count: Callable[[], int], show: Show, render: Presence | None
    ) -> None:
        self.channel, self.count, self.show, self.render = channel, count, show, render
        self.shown: int | None = None
        self.version = 0  # the room's own: its viewers only ever see its updates
        self.last = float("-inf")  # loop time of the last update
        self.timer: asyncio.TimerHandle | None = None

    def changed(self) -> None:
        """Note that a viewer came or went: the count goes out once the period allows."""
        if self.render is None or self.timer is not None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, self.last + PERIOD - loop.time())
        self.timer = loop.call_later(delay, self._update)

    def _update(self) -> None:
        self.timer = None
        count = self.count()
        if count == self.shown or self.render is None:
            return  # who came went again within the period
        self.last = asyncio.get_running_loop().time()
        self.shown, self.version = count, self.version + 1
        self.show(NAME, self.version, self.render(self.channel, count))

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
