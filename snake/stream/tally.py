"""Count the streams a process opens and closes; log the counts at INFO once a period."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

SECONDS = 60  # the period; nothing is logged for a period without a change
logger = logging.getLogger(__name__)


class Tally:
    """Streams opened, closed and dropped in this process: counted always, logged per period."""

    def __init__(self, open_now: Callable[[], int]) -> None:
        self.open_now = open_now
        self.opened = self.closed = self.dropped = 0
        self.loop: asyncio.AbstractEventLoop | None = None

    def count(self, opened: int = 0, closed: int = 0, dropped: int = 0) -> None:
        self.opened += opened
        self.closed += closed
        self.dropped += dropped
        loop = asyncio.get_running_loop()
        if self.loop is not loop:  # first stream of this event loop: start reporting
            self.loop = loop
            loop.call_later(SECONDS, self.report)

    def report(self) -> None:
        """Log the counts of the period just ended, if any; go on while streams are open."""
        if self.opened or self.closed or self.dropped:
            logger.info(
                "streams: %d open; %d opened, %d closed (%d dropped as stuck) in %g s",
                self.open_now(), self.opened, self.closed, self.dropped, SECONDS,
            )  # fmt: skip
        self.opened = self.closed = self.dropped = 0
        if self.open_now():
            asyncio.get_running_loop().call_later(SECONDS, self.report)
        else:
            self.loop = None
