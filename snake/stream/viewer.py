"""One viewer of a stream: written to at once when its client can take it, else holding the newest.

A write starts at once and usually finishes at once (the server copies it to the socket). Only
when the client cannot take it does the write become a task; meanwhile the viewer keeps one slot
per event name holding that name's newest version, so a slow client costs one pending message
per name, not a queue. A viewer is never sent a version at or below one it has for that name.
"""

from __future__ import annotations

import asyncio
import logging
import types
from collections.abc import Awaitable, Callable, Generator, Iterator
from typing import Any

from asgiref.typing import HTTPResponseBodyEvent
from django.conf import settings

from snake.stream import sse
from snake.stream.flow import Flow
from snake.stream.registry import State

# A viewer writes body messages only: any ASGI send is one, and so is a queue's put (hub.stream).
Send = Callable[[HTTPResponseBodyEvent], Awaitable[None]]
logger = logging.getLogger(__name__)


def body(chunk: bytes) -> HTTPResponseBodyEvent:
    return {"type": "http.response.body", "body": chunk, "more_body": True}


KEEPALIVE = body(sse.KEEPALIVE.encode())


# Above start(): mypy sees it as awaitable only where it has already read the decorator.
@types.coroutine
def _finish(steps: Iterator[Any], awaited: Any) -> Generator[Any, None, None]:
    # The task waits on what the write waits on, then steps it on: next(), not yield from,
    # which wants an iterable (granian's awaitable is an iterator only). asyncio sends None.
    try:
        while True:
            yield awaited
            awaited = next(steps)
    except StopIteration:
        return
    except BaseException:
        close = getattr(steps, "close", None)
        if close is not None:
            close()
        raise


def start(write: Awaitable[None]) -> asyncio.Future[None] | None:
    """Run `write` until it first waits; return a task that finishes it, or None if it is done."""
    # Python 3.12's eager tasks, for 3.11: most writes finish at once, and a task per viewer
    # per event is what made the fan-out slow. Through __await__, not coroutine.send: granian's
    # send returns an awaitable of its own, not a coroutine.
    steps = write.__await__()
    try:
        awaited = next(steps)
    except StopIteration:
        return None
    return asyncio.ensure_future(_finish(steps, awaited))


class Viewer:
    """One stream: one newest-wins slot per event name, written when the client can take it."""

    __slots__ = (
        "send", "flow", "sent", "pending", "ping_due", "busy", "stuck_since", "open", "on_drop",
    )  # fmt: skip

    def __init__(self, send: Send, flow: Flow | None = None) -> None:
        self.send = send
        self.flow = flow or Flow()
        self.flow.on_resume = self.flush
        self.sent: dict[str, int] = {}  # event name -> newest version written
        # event name -> newest not written
        self.pending: dict[str, tuple[int, HTTPResponseBodyEvent]] = {}
        self.ping_due = False
        self.busy: asyncio.Future[None] | None = None
        self.stuck_since: float | None = None
        self.open = False  # events wait until the opening has been sent
        self.on_drop: Callable[[], None] | None = None

    def opened_at(self, state: State) -> None:
        """Count the versions of the opening about to be written as sent."""
        for name, (version, _) in state.items():
            self.sent[name] = max(self.sent.get(name, -1), version)

    def offer(self, name: str, version: int, message: HTTPResponseBodyEvent) -> None:
        if version <= self.sent.get(name, -1):
            return
        flow = self.flow
        if not self.pending and self.busy is None and self.open and not flow.paused:
            # The usual case, once per viewer per event: nothing waits, so write it now.
            self.sent[name], self.ping_due, self.stuck_since = version, False, None
            # _write inlined: this runs once per viewer per event, and the call it saves is
            # part of the fan-out's per-viewer cost (d6c664a, measured with the rest of it).
            if not flow.write_now(message):
                self._send(message)
            return
        held = self.pending.get(name)
        if held is None or version > held[0]:
            self.pending[name] = (version, message)
            self.flush()

    def ping(self) -> None:
        self.ping_due = True
        self.flush()

    def _next(self) -> HTTPResponseBodyEvent | None:
        # Oldest name first; a slot at or below what was sent (the opening) is dropped.
        while self.pending:
            name = next(iter(self.pending))
            version, message = self.pending.pop(name)
            if version > self.sent.get(name, -1):
                self.sent[name] = version
                self.ping_due = False  # any write keeps the connection alive
                return message
        if self.ping_due:
            self.ping_due = False
            return KEEPALIVE
        return None

    def flush(self) -> None:
        """Write what is pending, in turn, while the client can take it."""
        if not self.open:
            return
        while self.busy is None and not self.flow.paused:
            message = self._next()
            self.stuck_since = None  # it can take a write: the stuck clock starts again
            if message is None or not self._write(message):
                return
        if self.pending or self.ping_due:
            self._still_stuck()

    def _write(self, message: HTTPResponseBodyEvent) -> bool:
        """Start writing `message`; True if it finished at once and the next may follow."""
        return self.flow.write_now(message) or self._send(message)

    def _send(self, message: HTTPResponseBodyEvent) -> bool:
        """Start writing `message` through the server's send; True if it finished at once."""
        try:
            self.busy = start(self.send(message))
        except Exception:  # the connection is gone; its disconnect will remove the viewer
            self.drop()
            return False
        if self.busy is not None:
            self.stuck_since = asyncio.get_running_loop().time()
            self.busy.add_done_callback(self._written)
            return False
        return True

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
        self.open, self.ping_due = False, False
        self.pending.clear()
        if self.busy is not None:
            self.busy.cancel()

    def drop(self) -> None:
        """Close the stream; the client reconnects and starts from the current state."""
        self.close()
        self.flow.abort()
