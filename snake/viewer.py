"""One viewer of a stream: written to at once when its client can take it, else holding the newest.

A write starts at once and usually finishes at once (the server copies it to the socket). Only
when the client cannot take it does the write become a task; meanwhile the viewer keeps just the
newest position, so a slow client costs one pending message, not a queue.
"""

from __future__ import annotations

import asyncio
import logging
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any

from django.conf import settings

from snake import events
from snake.flow import Flow

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]
logger = logging.getLogger(__name__)


def body(chunk: bytes) -> Message:
    return {"type": "http.response.body", "body": chunk, "more_body": True}


KEEPALIVE = body(events.KEEPALIVE.encode())


def start(coro: Coroutine[Any, Any, None]) -> asyncio.Future[None] | None:
    """Run `coro` until it first waits; return a task that finishes it, or None if it is done."""
    # Python 3.12's eager tasks, for 3.11: most writes finish at once, and a task per viewer
    # per event is what made the fan-out slow.
    try:
        awaited = coro.send(None)
    except StopIteration:
        return None
    return asyncio.ensure_future(_finish(coro, awaited))


@types.coroutine
def _finish(coro: Coroutine[Any, Any, None], awaited: Any) -> Generator[Any, None, None]:
    try:
        yield awaited  # the task waits on what coro was waiting on, then resumes coro
    except BaseException:
        coro.close()
        raise
    yield from coro  # type: ignore[misc]


class Viewer:
    """One stream: written to at once when it can take it, else holding the newest position."""

    __slots__ = (
        "send", "flow", "sent", "pending", "pending_seq", "busy", "stuck_since", "open", "on_drop",
    )  # fmt: skip

    def __init__(self, send: Send, flow: Flow | None = None) -> None:
        self.send = send
        self.flow = flow or Flow()
        self.flow.on_resume = self.flush
        self.sent = -1
        self.pending: Message | None = None
        self.pending_seq = -1
        self.busy: asyncio.Future[None] | None = None
        self.stuck_since: float | None = None
        self.open = False  # positions wait until the opening has been sent
        self.on_drop: Callable[[], None] | None = None

    def offer(self, seq: int, message: Message) -> None:
        if seq > self.sent and seq > self.pending_seq:
            self.pending, self.pending_seq = message, seq
            self.flush()

    def ping(self) -> None:
        if self.pending is None:
            self.pending = KEEPALIVE
        self.flush()

    def flush(self) -> None:
        """Write the pending message if the client can take it now."""
        message = self.pending
        if message is None or not self.open:
            return
        if message is not KEEPALIVE and self.pending_seq <= self.sent:
            self.pending = None  # older than the opening it was sent
            return
        if self.busy is not None or self.flow.paused:
            self._still_stuck()
            return
        self.pending, self.stuck_since = None, None
        self.sent = max(self.sent, self.pending_seq)
        try:
            self.busy = start(self.send(message))  # type: ignore[arg-type]
        except Exception:  # the connection is gone; its disconnect will remove the viewer
            self.drop()
            return
        if self.busy is not None:
            self.stuck_since = asyncio.get_running_loop().time()
            self.busy.add_done_callback(self._written)

    def _written(self, task: asyncio.Future[None]) -> None:
        self.busy, self.stuck_since = None, None
        if not task.cancelled() and task.exception() is None:
            self.flush()

    def _still_stuck(self) -> None:
        now = asyncio.get_running_loop().time()
        if self.stuck_since is None:
            self.stuck_since = now
        elif now - self.stuck_since > settings.SNAKE_STUCK_VIEWER_SECONDS:
            logger.info("dropped a viewer that took no write for %.1f s", now - self.stuck_since)
            if self.on_drop is not None:
                self.on_drop()
            self.drop()

    def close(self) -> None:
        """Write nothing more: forget what is pending and cancel a write still waiting."""
        self.open, self.pending = False, None
        if self.busy is not None:
            self.busy.cancel()

    def drop(self) -> None:
        """Close the stream; the client reconnects and starts from the current state."""
        self.close()
        self.flow.abort()
