"""Channel openings for synchronous callers (the GRIP hold): concurrent callers share one read.

A caller says when its request arrived. It gets the opening of a read that started at or after
that moment, so the opening holds every state committed before the request arrived (a publish
follows its commit: nothing already published is missing); every caller that arrived before a
read started shares that read. A connect storm through the GRIP proxy then makes a read per
batch of waiting holds, not per hold, whether the holds run on many threads (Django's handler)
or one after another on one (each arrived before the read that its predecessor started).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from snake.stream import registry, sse

KEEP = 1024  # channels whose last opening is kept


class SharedReads:
    """The newest opening read per channel, and which channels are being read right now."""

    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self.changed = threading.Condition()
        self.done: OrderedDict[str, tuple[float, str]] = OrderedDict()  # -> (read started, text)
        self.running: dict[str, float] = {}  # channel -> when its read started

    def opening(self, channel: str, arrived: float | None = None) -> str:
        """Return the channel's opening (sse.opening), read at or after `arrived` (monotonic)."""
        arrived = time.monotonic() if arrived is None else arrived
        with self.changed:
            while True:
                started, text = self.done.get(channel, (-1.0, ""))
                if started >= arrived:
                    return text
                if channel not in self.running:
                    break
                self.changed.wait()  # for the read under way; it serves us if it began after us
            started = self.running[channel] = time.monotonic()
        read: str | None = None
        try:
            read = sse.opening(registry.snapshot(channel))
            return read
        finally:
            with self.changed:
                del self.running[channel]
                if read is not None:
                    self._keep(channel, started, read)
                self.changed.notify_all()  # a waiter whose read failed here tries its own

    def _keep(self, channel: str, started: float, text: str) -> None:
        if started > self.done.get(channel, (-1.0, ""))[0]:
            self.done[channel] = (started, text)
            self.done.move_to_end(channel)
            while len(self.done) > self.keep:
                self.done.popitem(last=False)


reads = SharedReads()
