from __future__ import annotations

import asyncio
import threading

import pytest

from snake.stream import handoff


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """What after_publish asked time.sleep for (a 50 µs sleep leaves nothing else to see)."""
    asked: list[float] = []
    monkeypatch.setattr(handoff.time, "sleep", asked.append)
    return asked


def on_a_thread(work: object) -> None:
    thread = threading.Thread(target=work)  # type: ignore[arg-type]
    thread.start()
    thread.join()


def test_a_thread_that_published_hands_an_idle_loop_the_gil(sleeps: list[float]) -> None:
    on_a_thread(handoff.after_publish)
    assert sleeps == [handoff.HANDOFF_SECONDS]


def test_nothing_is_handed_over_while_a_room_fans_out(sleeps: list[float]) -> None:
    with handoff.fanning_out(), handoff.fanning_out():
        on_a_thread(handoff.after_publish)
    assert sleeps == []
    on_a_thread(handoff.after_publish)
    assert sleeps == [handoff.HANDOFF_SECONDS]  # both fan-outs ended


def test_the_loop_never_sleeps(sleeps: list[float]) -> None:
    async def publish() -> None:
        handoff.after_publish()

    asyncio.run(publish())
    assert sleeps == []
