"""What the server under a stream lets us see: uvicorn's transport, or nothing."""

from __future__ import annotations

import time

from snake.stream import flow, hub
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
