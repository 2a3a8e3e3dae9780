"""What the server under a stream lets us see: uvicorn's transport, or nothing."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator

from snake.stream import flow, hub, sse
from snake.stream.viewer import Viewer, body
from tests.sse import SSEClient
from tests.stream.counter import Counter


@contextlib.contextmanager
def watching(engine: str, name: str) -> Iterator[tuple[SSEClient, hub.Room, Viewer]]:
    """A client streaming count-<name> from the engine, once open: it, its room, its viewer."""
    client = SSEClient(engine, f"/count/{name}/")
    try:
        client.wait_for(lambda _: len(client.events) >= 2)
        room = hub._rooms[f"count-{name}"]
        [joined] = tuple(room.viewers)
        yield client, room, joined
    finally:
        client.close()


def test_a_stream_on_uvicorn_can_be_dropped_through_its_transport(
    engine: str, counter: Counter
) -> None:
    with watching(engine, "flow") as (viewer, room, joined):
        assert isinstance(joined.flow, flow.AsyncioFlow) and not joined.flow.paused
        on_loop(room, lambda: aborted(joined.flow))  # a drop: the client sees the connection end
        # Nothing more goes straight to a socket that is closing: only send knows what to do.
        assert not on_loop(room, lambda: joined.flow.write_now(body(b"x")))
        deadline = time.monotonic() + 15
        while not viewer.closed:
            assert time.monotonic() < deadline, "the stream outlived its abort"
            time.sleep(0.01)


def aborted(dropped: flow.Flow) -> bool:
    dropped.abort()
    return True


def test_an_unknown_server_s_send_gets_a_flow_that_never_pauses() -> None:
    async def send(message: object) -> None:
        pass

    unknown = flow.flow_for(send)
    assert type(unknown) is flow.Flow and not unknown.paused
    unknown.abort()  # nothing to abort: a no-op, never an error


def on_loop(room: hub.Room, call: Callable[[], bool]) -> bool:
    """Run `call` on the server's event loop (where a room's writes run); return its result."""
    loop = room.task.get_loop()
    return asyncio.run_coroutine_threadsafe(_call(call), loop).result(10)


async def _call(call: Callable[[], bool]) -> bool:
    return call()


def test_a_stream_on_uvicorn_writes_what_would_not_wait_straight_to_the_socket(
    engine: str, counter: Counter
) -> None:
    with watching(engine, "direct") as (viewer, room, joined):
        assert isinstance(joined.flow, flow.UvicornFlow)
        first, second = (body(sse.encode(name, "hi").encode()) for name in ("one", "two"))
        # Framed as uvicorn's send frames it, each its own body: the client parses both.
        assert on_loop(room, lambda: joined.flow.write_now(first))
        assert on_loop(room, lambda: joined.flow.write_now(second))
        viewer.wait_for(lambda _: [e.type for e in viewer.events][-2:] == ["one", "two"])
        # What only uvicorn's send may do: end the response, or write an empty chunk (its end).
        last = {"type": "http.response.body", "body": b"x", "more_body": False}
        assert not on_loop(room, lambda: joined.flow.write_now(last))  # type: ignore[arg-type]
        assert not on_loop(room, lambda: joined.flow.write_now(body(b"")))
        counter.bump("count-direct")  # the stream goes on, framed right
        viewer.wait_for(lambda _: viewer.events[-1].type == "count")
        assert viewer.error is None and not viewer.closed
