"""The engine stands alone: a counter channel, no board code, streamed by a live server."""

from __future__ import annotations

import ast
import time
from collections.abc import Callable
from pathlib import Path

from tests.sse import SSEClient
from tests.stream.conftest import counts
from tests.stream.counter import Counter, fragment


def data(viewer: SSEClient, name: str) -> list[str]:
    return [e.data for e in viewer.events if e.type == name]


def until(done: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out waiting for the stream"
        time.sleep(0.01)


def wait_count(viewer: SSEClient, name: str, n: int) -> None:
    until(lambda: fragment(name, n) in data(viewer, name))


def test_a_stream_opens_with_every_event_of_the_snapshot(engine: str, counter: Counter) -> None:
    counter.set("count-a", "count", 7)
    viewer = SSEClient(engine, "/count/a/")
    try:
        until(lambda: bool(data(viewer, "other")))
        assert viewer.status == 200
        assert viewer.headers["Content-Type"] == "text/event-stream"
        kinds = [e.type for e in viewer.events]
        assert kinds == ["stream-open", "count", "other"]
        assert data(viewer, "count") == [fragment("count", 7)]
        assert data(viewer, "other") == [fragment("other", 0)]
    finally:
        viewer.close()


def test_every_viewer_gets_each_names_newest_in_order(engine: str, counter: Counter) -> None:
    viewers = [SSEClient(engine, "/count/b/") for _ in range(3)]
    try:
        for viewer in viewers:
            until(lambda v=viewer: bool(data(v, "other")))
        for _ in range(5):
            counter.bump("count-b")
        counter.bump("count-b", "other")
        for viewer in viewers:
            wait_count(viewer, "count", 5)
            wait_count(viewer, "other", 1)
            seen = counts([e.data for e in viewer.events], "count")
            assert seen == sorted(set(seen)) and seen[0] == 0 and seen[-1] == 5
    finally:
        for viewer in viewers:
            viewer.close()


def test_channels_are_apart(engine: str, counter: Counter) -> None:
    mine, theirs = SSEClient(engine, "/count/c/"), SSEClient(engine, "/count/d/")
    try:
        for viewer in (mine, theirs):
            until(lambda v=viewer: bool(data(v, "other")))
        counter.bump("count-d")
        wait_count(theirs, "count", 1)
        counter.bump("count-c")
        counter.bump("count-c")
        wait_count(mine, "count", 2)
        assert counts(data(theirs, "count")) == [0, 1]
    finally:
        mine.close()
        theirs.close()


def test_the_counter_and_its_server_import_no_board_code() -> None:
    board = {"snake.board", "snake.channel", "snake.models", "snake.views"}
    here = Path(__file__).parent
    for path in (here / "counter.py", here / "conftest.py", Path(__file__)):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
            elif isinstance(node, ast.Import):
                names = {a.name for a in node.names}
            else:
                continue
            assert not names & board, f"{path.name} imports {names & board}"
