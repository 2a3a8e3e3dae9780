"""bench's `quiet` configuration beside make run's: the same app, only no `presence` event."""

from __future__ import annotations

import time

import httpx
import pytest

from bench import servers
from snake.stream.presence import PERIOD
from tests.sse import SSEClient


@pytest.mark.parametrize("kind", ["uvicorn", "quiet"])
def test_both_stream_moves_and_only_make_runs_app_shows_who_is_here(kind: str) -> None:
    with servers.STARTERS[kind]("test") as target, httpx.Client(base_url=target.url) as client:
        viewers = [SSEClient(target.url, "/b/quiet/events/") for _ in range(2)]
        try:
            token = client.get("/b/quiet/").cookies["csrftoken"]
            headers = {"X-CSRFToken": token, "Accept": "application/json"}
            assert client.post("/b/quiet/move", data={"direction": "d"}, headers=headers).is_success
            for viewer in viewers:
                assert viewer.wait_seq(1) == {"x": 505, "y": 150, "seq": 1}
            assert client.get("/b/quiet/state").json()["viewers"] == 2
            if kind == "uvicorn":
                viewers[0].wait_watching(2)
            else:
                time.sleep(3 * PERIOD)  # make run's app has shown the count by now
                assert all(b"event: presence" not in viewer.raw for viewer in viewers)
        finally:
            for viewer in viewers:
                viewer.close()
