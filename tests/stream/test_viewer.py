from __future__ import annotations

import asyncio

import pytest

from snake.stream import viewer


def test_start_runs_a_coroutine_until_it_first_waits() -> None:
    async def run() -> list[str]:
        steps: list[str] = []
        gate = asyncio.Event()

        async def instant() -> None:
            steps.append("instant")

        async def waits() -> None:
            steps.append("before")
            await gate.wait()
            steps.append("after")

        async def forever() -> None:
            try:
                await asyncio.Event().wait()
            finally:
                steps.append("closed")

        assert viewer.start(instant()) is None and steps == ["instant"]
        task = viewer.start(waits())
        assert task is not None and steps[-1] == "before"
        gate.set()
        await task
        stuck = viewer.start(forever())
        assert stuck is not None
        stuck.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stuck
        return steps

    assert asyncio.run(run()) == ["instant", "before", "after", "closed"]
