"""Openings for synchronous callers: holds waiting together share one read, none is stale."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from snake import stream
from snake.stream import shared, sse
from tests.stream.conftest import counts
from tests.stream.counter import Counter

PREFIX = "held-"


class SlowOwner(Counter):
    """A counter whose reads are counted and, while `gate` is clear, wait for it."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.gate = threading.Event()
        self.gate.set()
        self.fail = False

    def snapshot(self, channel: str) -> stream.State:
        self.reads += 1
        assert self.gate.wait(30)
        if self.fail:
            raise RuntimeError("the database is away")
        return super().snapshot(channel)


@pytest.fixture
def owner() -> Iterator[SlowOwner]:
    slow = SlowOwner()
    stream.register(PREFIX, slow.snapshot)
    yield slow
    stream.unregister(PREFIX)


def in_thread(reads: shared.SharedReads, arrived: float, into: list[str]) -> threading.Thread:
    thread = threading.Thread(target=lambda: into.append(reads.opening("held-a", arrived)))
    thread.start()
    return thread


def until(condition: object) -> None:
    deadline = time.monotonic() + 30
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline
        time.sleep(0.005)


def test_holds_that_arrived_before_a_read_began_share_it(owner: SlowOwner) -> None:
    reads, got = shared.SharedReads(), []
    owner.gate.clear()
    arrived = time.monotonic()
    first = in_thread(reads, arrived, got)
    until(lambda: owner.reads == 1)  # the first hold's read is under way
    waiting = [in_thread(reads, arrived, got) for _ in range(20)]
    owner.set("held-a", "count", 3)  # committed while the read runs: seen or not, all alike
    owner.gate.set()
    for thread in (first, *waiting):
        thread.join(30)
    assert owner.reads == 1 and len(set(got)) == 1 and len(got) == 21


def test_a_hold_that_arrived_after_a_read_began_gets_a_later_one(owner: SlowOwner) -> None:
    reads, got = shared.SharedReads(), []
    owner.gate.clear()
    first = in_thread(reads, time.monotonic(), got)
    until(lambda: owner.reads == 1)
    owner.set("held-a", "count", 4)  # committed (and maybe published) before the next arrives
    late = in_thread(reads, time.monotonic(), got)
    owner.gate.set()
    first.join(30)
    late.join(30)
    assert owner.reads == 2
    assert counts(got[-1]) == [4]  # the late hold's opening: read after it arrived


def test_one_thread_serving_holds_in_turn_reads_once_per_batch(owner: SlowOwner) -> None:
    reads = shared.SharedReads()
    queued = [time.monotonic() for _ in range(5)]  # five holds waiting for the one thread
    openings = [reads.opening("held-a", arrived) for arrived in queued]
    assert owner.reads == 1 and openings == [sse.opening(owner.snapshot("held-a"))] * 5
    owner.set("held-a", "count", 9)
    assert counts(reads.opening("held-a", time.monotonic())) == [9]  # a new arrival reads anew


def test_a_failed_read_is_retried_by_the_next_hold(owner: SlowOwner) -> None:
    reads = shared.SharedReads()
    owner.fail = True
    with pytest.raises(RuntimeError):
        reads.opening("held-a")
    owner.fail = False
    assert counts(reads.opening("held-a")) == [0]
