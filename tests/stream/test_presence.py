"""How many watch a channel: counted by its room, shown at most once a period, only on change.

The channels here are counters (tests/stream/counter.py) whose owner shows its audience as an
`<output id="presence">`; the plain counter channels show none.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from snake import stream
from snake.stream import hub, presence
from tests.stream.conftest import counts
from tests.stream.counter import Counter

PREFIX = "seen-"


def shown(channel: str, viewers: int) -> str:
    return f'<output id="presence" data-n="{viewers}">{viewers}</output>'


@pytest.fixture
def seen() -> Iterator[Counter]:
    owner = Counter()
    stream.register(PREFIX, owner.snapshot, presence=shown)
    yield owner
    stream.unregister(PREFIX)


async def opened(channel: str) -> AsyncIterator[bytes]:
    """A stream of `channel` that has sent its opening."""
    viewer = hub.stream(channel)
    await anext(viewer)
    return viewer


async def read_until(viewer: AsyncIterator[bytes], viewers: int) -> list[int]:
    """Read `viewer` until it is shown `viewers` watching; return every count it was shown."""
    text = ""
    while viewers not in counts(text, "presence"):
        text += (await asyncio.wait_for(anext(viewer), 10)).decode()
    return counts(text, "presence")


def test_a_crowd_arriving_within_a_period_is_one_update_with_its_size(seen: Counter) -> None:
    async def run() -> tuple[list[int], int]:
        first = await opened("seen-crowd")
        crowd = []
        for _ in range(10):  # arriving over ~0.2 s, in many turns of the loop, as a storm does
            crowd.append(await opened("seen-crowd"))
            await asyncio.sleep(0.02)
        try:
            shown = await read_until(first, 11)
            # Counted in the room, not by what one viewer saw: a viewer that is not reading
            # holds only the newest presence, so it would hide updates made per arrival.
            return shown, hub._rooms["seen-crowd"].audience.version
        finally:
            for viewer in (first, *crowd):
                await viewer.aclose()

    shown, updates = asyncio.run(run())
    # The first arrival alone, then the crowd: 2 (3 if the box took over a period to open it).
    assert shown[-1] == 11 and updates <= 3


def test_viewers_who_leave_are_counted_out(seen: Counter) -> None:
    async def run() -> list[int]:
        first = await opened("seen-leave")
        others = [await opened("seen-leave") for _ in range(2)]
        await read_until(first, 3)
        for viewer in others:
            await viewer.aclose()
        assert hub.watching("seen-leave") == 1
        try:
            return await read_until(first, 1)
        finally:
            await first.aclose()

    assert asyncio.run(run())[-1] == 1
    assert hub.watching("seen-leave") == 0


def test_a_new_viewer_opens_with_the_count_already_shown(seen: Counter) -> None:
    async def run() -> str:
        first = await opened("seen-late")
        second = await opened("seen-late")
        await read_until(first, 2)
        late = hub.stream("seen-late")
        try:
            return (await anext(late)).decode()
        finally:
            for viewer in (first, second, late):
                await viewer.aclose()

    assert counts(asyncio.run(run()), "presence") == [2]


def test_a_channel_whose_owner_shows_no_audience_gets_no_presence_event(counter: Counter) -> None:
    async def run() -> str:
        viewers = [await opened("count-alone") for _ in range(2)]
        text = ""
        try:
            # Two periods: had the owner a presence function, its update would be in by now.
            async with asyncio.timeout(2 * presence.PERIOD):
                while True:
                    text += (await anext(viewers[0])).decode()
        except TimeoutError:
            return text
        finally:
            for viewer in viewers:
                await viewer.aclose()

    assert "event: presence" not in asyncio.run(run())


def test_changes_within_the_period_wait_for_it_and_a_count_that_came_back_is_not_shown() -> None:
    shows: list[tuple[str, int, str]] = []
    now = {"count": 1}

    async def run() -> None:
        audience = presence.Audience(
            "seen-unit", lambda: now["count"], lambda *e: shows.append(e), shown
        )
        audience.changed()
        await asyncio.sleep(0.05)
        assert [version for _, version, _ in shows] == [1]
        now["count"] = 2
        audience.changed()
        audience.changed()  # one update waits for the period, however many changes
        now["count"] = 1  # ...and shows nothing if the count is back where it was
        await asyncio.sleep(presence.PERIOD + 0.5)
        assert len(shows) == 1
        now["count"] = 3
        audience.changed()
        await asyncio.sleep(0.05)  # the period since the last update has passed: at once
        audience.close()

    asyncio.run(run())
    assert shows == [("presence", 1, shown("", 1)), ("presence", 2, shown("", 3))]
