"""What the ASGI server under a stream can tell us: can the client take a write, and how to drop it.

uvicorn's `send` waits while the client's socket is full; daphne's never waits, and Twisted
buffers every write without bound (django/daphne #170), so a viewer that stops reading grows
the server. Twisted does tell a registered push producer when a connection's buffer fills and
drains: on daphne this module registers one, and a stream holds its writes back exactly as it
does on uvicorn. Both can drop a client that stopped reading. This is the only module that
knows which server runs us; on another server a stream simply never sees a pause.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from asgiref.typing import ASGISendCallable
from daphne.http_protocol import WebRequest


class Flow:
    """A client's flow control as far as the server lets us see it."""

    paused = False

    def __init__(self) -> None:
        self.on_resume: Callable[[], None] | None = None

    def abort(self) -> None:
        """Close the connection now, dropping whatever is still buffered for it."""


class DaphneFlow(Flow):
    """A Twisted push producer on daphne's request: paused while the client's buffer is full."""

    def __init__(self, request: WebRequest) -> None:
        super().__init__()
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

    def __init__(self, transport: asyncio.WriteTransport) -> None:
        super().__init__()
        self.transport = transport

    def abort(self) -> None:
        self.transport.abort()


def flow_for(send: ASGISendCallable) -> Flow:
    """Return the flow control behind an ASGI `send` callable."""
    # daphne passes functools.partial(server.handle_reply, request); uvicorn a bound method
    # of its request cycle, which holds the asyncio transport.
    args = getattr(send, "args", ())
    if args and isinstance(args[0], WebRequest):
        return DaphneFlow(args[0])
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is not None and hasattr(transport, "abort"):
        return AsyncioFlow(transport)
    return Flow()
