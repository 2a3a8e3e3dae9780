"""What the server under a stream lets us see: uvicorn's transport, or nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from snake.stream import flow, hub, sse
from snake.stream.viewer import body
from tests.sse import SSEClient
from tests.stream.counter import Counter


def test_a_stream_on_uvicorn_can_be_dropped_through_its_transport(
    engine: str, counter: Counter
) -> None:
    viewer = SSEClient(engine, "/count/flow/")
    try:
        viewer.wait_for(lambda _: len(viewer.events) >= 2)
        [joined] = tuple(hub._rooms["count-flow"].viewers)
        assert isinstance(joined.flow, flow.AsyncioFlow) and not joined.flow.paused
        joined.flow.abort()  # what a drop does: the client sees the connection end
        deadline = time.monotonic() + 15
        while not viewer.closed:
            assert time.monotonic() < deadline, "the stream outlived its abort"
            time.sleep(0.01)
    finally:
        viewer.close()


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
    viewer = SSEClient(engine, "/count/direct/")
    try:
        viewer.wait_for(lambda _: len(viewer.events) >= 2)
        room = hub._rooms["count-direct"]
        [joined] = tuple(room.viewers)
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
    finally:
        viewer.close()
