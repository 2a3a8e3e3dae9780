"""Hand the event loop the GIL once a worker thread has published, while the loop is idle.

A view publishes from a worker thread and goes on with its request (the response middleware,
the answer); the room's fan-out runs on the event loop, which needs the GIL that thread holds.
Stamped in a live uvicorn, the first viewer's write waited ~0.6 ms for the rest of the request;
a short sleep after the publish lets the loop take the GIL and write first (~0.15 ms).
While a room is already fanning out or resting (moves come faster than they go out, a burst)
the loop has work anyway and the sleep would only slow the next move: none then.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

# Long enough for the woken loop thread to be scheduled and take the GIL; a sleep(0) gave it
# back before the loop got it as often as not.
HANDOFF_SECONDS = 50e-6

_busy = 0  # rooms fanning out or resting now


@contextlib.contextmanager
def fanning_out() -> Iterator[None]:
    """Mark a room's fan-out and rest: publishes meanwhile hand nothing over."""
    global _busy
    _busy += 1
    try:
        yield
    finally:
        _busy -= 1


def on_the_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def after_publish() -> None:
    """Let the loop fan out first, if it is idle and this is not the loop's own thread."""
    if not _busy and not on_the_loop():
        time.sleep(HANDOFF_SECONDS)
