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


class Steps:
    """An awaitable that is no coroutine, as granian's send returns: an iterator with no send()
    or close(), waiting on each of `waits` in turn."""

    def __init__(self, waits: list[asyncio.Future[None]], done: list[str]) -> None:
        self.waits, self.done = waits, done

    def __await__(self) -> Steps:
        return self

    def __next__(self) -> asyncio.Future[None]:
        if self.waits:
            wait = self.waits.pop(0)
            wait._asyncio_future_blocking = True  # what Future.__await__ sets before it yields
            return wait
        self.done.append("done")
        raise StopIteration


def test_start_runs_any_awaitable_until_it_first_waits() -> None:
    async def run() -> list[str]:
        done: list[str] = []
        assert viewer.start(Steps([], done)) is None and done == ["done"]
        gate = asyncio.get_running_loop().create_future()
        task = viewer.start(Steps([gate], done))
        assert task is not None and done == ["done"]
        gate.set_result(None)
        await task
        stuck = viewer.start(Steps([asyncio.get_running_loop().create_future()], done))
        assert stuck is not None
        stuck.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stuck
        return done

    assert asyncio.run(run()) == ["done", "done"]


class Client:
    """A send that records each message and, while `full`, waits as a full socket's does."""

    def __init__(self) -> None:
        self.written: list[tuple[str, int]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def send(self, message: dict) -> None:
        await self.gate.wait()
        self.written.append(message["body"])


def message(name: str, version: int) -> dict:
    return viewer.body(f"{name}:{version}".encode())


def offered(client: Client, *offers: tuple[str, int], opening: dict | None = None) -> list:
    """Offer (name, version) pairs to an open viewer in turn; return what it wrote, decoded."""

    async def run() -> list:
        v = viewer.Viewer(client.send)
        v.opened_at(opening or {})
        v.open = True
        for name, version in offers:
            if (name, version) == ("full", 0):
                client.gate.clear()
            elif (name, version) == ("drain", 0):
                client.gate.set()
                await asyncio.sleep(0)
            else:
                v.offer(name, version, message(name, version))
            await asyncio.sleep(0)
        client.gate.set()
        for _ in range(5):
            await asyncio.sleep(0)
        return [chunk.decode() for chunk in client.written]

    return asyncio.run(run())


def test_a_version_at_or_below_one_sent_is_never_written() -> None:
    written = offered(Client(), ("position", 3), ("position", 2), ("position", 3), ("position", 5))
    assert written == ["position:3", "position:5"]


def test_the_opening_counts_as_sent() -> None:
    opening = {"position": (4, "<p>4</p>")}
    written = offered(Client(), ("position", 4), ("position", 5), opening=opening)
    assert written == ["position:5"]


def test_a_slow_client_holds_the_newest_of_each_name_and_nothing_more() -> None:
    client = Client()
    steps = [("position", 1), ("full", 0), ("position", 2)]  # 2 is being written, waiting
    steps += [("position", 3), ("presence", 1), ("position", 4), ("presence", 2), ("drain", 0)]
    assert offered(client, *steps) == ["position:1", "position:2", "position:4", "presence:2"]


def test_names_never_hold_each_other_back() -> None:
    written = offered(Client(), ("position", 9), ("presence", 1), ("position", 3))
    assert written == ["position:9", "presence:1"]
