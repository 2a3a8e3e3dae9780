from __future__ import annotations

import asyncio
import logging

import pytest

from snake.stream import tally


def test_counts_are_logged_once_a_period_and_not_when_nothing_changed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(tally, "SECONDS", 0.05)
    open_now = [0]
    counts = tally.Tally(lambda: open_now[0])

    async def run() -> None:
        open_now[0] = 3
        counts.count(opened=3)
        await asyncio.sleep(0.08)  # one period: 3 opened
        open_now[0] = 2
        counts.count(closed=1, dropped=1)
        await asyncio.sleep(0.05)  # the next: 1 closed, 1 of them dropped
        await asyncio.sleep(0.1)  # quiet periods log nothing
        open_now[0] = 0
        counts.count(closed=2)
        await asyncio.sleep(0.1)  # the last, then the reports stop with no stream open

    with caplog.at_level(logging.INFO, logger="snake.stream.tally"):
        asyncio.run(run())
    assert [r.getMessage() for r in caplog.records] == [
        "streams: 3 open; 3 opened, 0 closed (0 dropped as stuck) in 0.05 s",
        "streams: 2 open; 0 opened, 1 closed (1 dropped as stuck) in 0.05 s",
        "streams: 0 open; 0 opened, 2 closed (0 dropped as stuck) in 0.05 s",
    ]
