"""What the ASGI server under a stream can tell us: can the client take a write, and how to drop it.

uvicorn's `send` waits while the client's socket is full; daphne's never waits, and Twisted
buffers every write without bound (django/daphne #170), so a viewer that stops reading grows
the server. Twisted does tell a registered push producer when a connection's buffer fills and
drains: on daphne this module registers one, and a stream holds its writes back exactly as it
does on uvicorn. Both can drop a client that stopped reading; on any other server (granian) a
drop ends the stream's task, and the server closes the response it left unfinished, as ASGI
servers must. On uvicorn's httptools protocol a write that would not wait goes straight to the
socket, framed as its `send` frames it: the send's coroutine and checks cost as much again as
the write (py-spy, 3,000 viewers). This is the only module that knows which server runs us; on
another server a stream never sees a pause.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from asgiref.typing import ASGISendCallable, HTTPResponseBodyEvent
from daphne.http_protocol import WebRequest
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle


class Flow:
    """A client's flow control as far as the server lets us see it."""

    __slots__ = ("on_resume",)  # one per viewer, read on every write of a fan-out
    paused = False

    def __init__(self) -> None:
        self.on_resume: Callable[[], None] | None = None

    def abort(self) -> None:
        """Close the connection now, dropping whatever is still buffered for it."""

    def write_now(self, message: HTTPResponseBodyEvent) -> bool:
        """Write a body message straight to the socket if it would not wait; False: use send."""
        return False


class DaphneFlow(Flow):
    """A Twisted push producer on daphne's request: paused while the client's buffer is full."""

    __slots__ = ("request", "paused")

    def __init__(self, request: WebRequest) -> None:
        super().__init__()
        self.paused = False
        self.request = request
        request.registerProducer(self, True)

    def pauseProducing(self) -> None:  # Twisted IPushProducer
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        if self.on_resume is not None:
            self.on_resume()

    def stopProducing(self) -> None:
        self.on_resume = None

    def abort(self) -> None:
        channel = self.request.channel
        if channel is not None and channel.transport is not None:
            channel.transport.abortConnection()


class AsyncioFlow(Flow):
    """uvicorn: its send already waits while the client is full; only dropping needs the socket."""

    __slots__ = ("transport",)

    def __init__(self, transport: asyncio.WriteTransport) -> None:
        super().__init__()
        self.transport = transport

    def abort(self) -> None:
        self.transport.abort()


class TaskFlow(Flow):
    """A server whose socket we cannot reach: dropping the client ends its stream's task."""

    __slots__ = ("task", "aborted")

    def __init__(self, task: asyncio.Task[object]) -> None:
        super().__init__()
        self.task = task
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True
        self.task.cancel()  # the stream's app catches it and returns (consumers.py)


def _chunk(message: HTTPResponseBodyEvent) -> bytes | None:
    """Frame a body message as uvicorn's chunked send would; None: one only its send may write."""
    data = message["body"]
    # An empty chunk would end the response; a last one must go through send to end it.
    if not data or not message["more_body"]:
        return None
    return b"%x\r\n%b\r\n" % (len(data), data)


class UvicornFlow(AsyncioFlow):
    """uvicorn's httptools cycle: a chunk it would write at once is written without its send."""

    __slots__ = ("chunked",)
    # A fan-out writes one message to every viewer: frame it once. Keyed by the message's
    # identity, as a fan-out shares one message object among all its viewers.
    _message: object = None
    _framed: bytes | None = None

    def __init__(self, cycle: RequestResponseCycle) -> None:
        super().__init__(cycle.transport)
        # Read once: a stream's flow is made once its response has started, and its app ends
        # the response only after its viewer has left the room. Framed otherwise: always send.
        self.chunked = bool(cycle.chunked_encoding) and not cycle.response_complete

    def write_now(self, message: HTTPResponseBodyEvent) -> bool:
        transport = self.transport
        # Only into an empty buffer of an open socket: where uvicorn's send would wait (it
        # pauses at its high-water mark) or the client has gone, send runs. The transport, not
        # the cycle: the write reads it anyway, and at 10,000 viewers every other object read
        # per viewer is a cache miss: a fan-out pass took 93 / 96 / 88 ms reading the cycle's
        # flags, 87 / 90 / 79 without (three interleaved pairs; bare transport writes ~70).
        if transport.get_write_buffer_size() or transport.is_closing() or not self.chunked:
            return False
        if message is not UvicornFlow._message:
            UvicornFlow._message, UvicornFlow._framed = message, _chunk(message)
        framed = UvicornFlow._framed
        if framed is None:
            return False
        transport.write(framed)
        return True


def flow_for(send: ASGISendCallable) -> Flow:
    """Return the flow control behind an ASGI `send` callable."""
    # daphne passes functools.partial(server.handle_reply, request); uvicorn a bound method
    # of its request cycle, which holds the asyncio transport.
    args = getattr(send, "args", ())
    if args and isinstance(args[0], WebRequest):
        return DaphneFlow(args[0])
    cycle = getattr(send, "__self__", None)
    if type(cycle) is RequestResponseCycle:
        return UvicornFlow(cycle)
    transport = getattr(cycle, "transport", None)
    if transport is not None and hasattr(transport, "abort"):
        return AsyncioFlow(transport)
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no event loop: nothing to end
        task = None
    return Flow() if task is None else TaskFlow(task)
