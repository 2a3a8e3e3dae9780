"""Viewers counted across processes through a real Redis: one total, one publisher a period.

The censuses here stand for workers: each has its own name and a source the test sets. The
`presence` events they publish go through snake.stream.delivery, to this process's listener
queues (these tests run without REDIS_URL), where a recording listener reads them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import redis as redis_py

from deploy.redis import Redis
from snake import stream
from snake.stream import census, presence
from tests.listeners import Recording
from tests.live import Player
from tests.sse import SSEClient

PREFIX = "census-"
CHANNEL = PREFIX + "one"


def shown(channel: str, viewers: int) -> str:
    return f'<output id="presence" data-n="{viewers}">{viewers}</output>'


@pytest.fixture
def owner() -> Iterator[None]:
    stream.register(PREFIX, lambda channel: {}, presence=shown)
    yield
    stream.unregister(PREFIX)


@pytest.fixture
def censuses(redis: Redis, owner: None) -> Iterator[Callable[[str], census.Census]]:
    """Make censuses on the test's Redis, each named like a worker; all stopped after."""
    made: list[census.Census] = []

    def worker(name: str) -> census.Census:
        made.append(census.Census(redis_py.Redis.from_url(redis.url, decode_responses=True), name))
        return made[-1]

    yield worker
    for each in made:
        each.stop()


def shows(recording: Recording) -> list[int]:
    """Take the counts the presence events on CHANNEL showed, in order."""
    events = recording.queued(CHANNEL)
    assert {name for name, _, _ in events} <= {presence.NAME}
    return [int(fragment.split('data-n="')[1].split('"')[0]) for _, _, fragment in events]


def test_two_workers_viewers_make_one_total_shown_once_a_period(censuses, listen) -> None:
    recording = listen(CHANNEL)
    a, b = censuses("a"), censuses("b")
    a.sources["rooms"] = lambda: {CHANNEL: 2}
    b.sources["rooms"] = lambda: {CHANNEL: 3, PREFIX + "other": 1}
    a.tick()
    b.tick()  # b's count is in; a held the lock, so a showed 2 and b shows nothing yet
    assert shows(recording) == [2]
    assert a.total(CHANNEL) == b.total(CHANNEL) == 5
    time.sleep(presence.PERIOD + 0.1)
    b.tick()
    a.tick()
    assert shows(recording) == [5]
    time.sleep(presence.PERIOD + 0.1)
    a.tick()  # the total has not changed: nothing to show
    assert shows(recording) == []


def test_versions_grow_across_workers(censuses, listen) -> None:
    recording = listen(CHANNEL)
    a, b = censuses("a"), censuses("b")
    a.sources["rooms"] = lambda: {CHANNEL: 1}
    a.tick()
    time.sleep(presence.PERIOD + 0.1)
    b.sources["rooms"] = lambda: {CHANNEL: 1}
    b.tick()
    versions = [version for _, version, _ in recording.queued(CHANNEL)]
    assert len(versions) == 2 and versions[0] < versions[1]


def test_viewers_who_all_left_are_uncounted_at_once(censuses) -> None:
    a, b = censuses("a"), censuses("b")
    here = {CHANNEL: 2}
    a.sources["rooms"] = lambda: dict(here)
    b.sources["rooms"] = lambda: {CHANNEL: 1}
    a.tick()
    b.tick()
    assert b.total(CHANNEL) == 3
    here.clear()  # a's room closed
    a.tick()
    assert b.total(CHANNEL) == 1


def test_a_dead_workers_viewers_are_uncounted_once_its_heartbeat_expires(censuses) -> None:
    a, b = censuses("a"), censuses("b")
    a.sources["rooms"] = lambda: {CHANNEL: 4}
    b.sources["rooms"] = lambda: {CHANNEL: 1}
    a.tick()  # a's last heartbeat: it dies without taking its count back
    b.tick()
    assert b.total(CHANNEL) == 5
    deadline = time.monotonic() + census.TTL + 5
    while b.total(CHANNEL) != 1 and time.monotonic() < deadline:
        time.sleep(0.2)
        b.tick()  # b lives on: its heartbeat goes on
    assert b.total(CHANNEL) == 1


def test_channels_whose_owner_shows_no_audience_are_not_counted(censuses) -> None:
    a = censuses("a")
    a.sources["rooms"] = lambda: {"quiet-1": 3, CHANNEL: 1}
    assert a.counts() == {CHANNEL: {"a/rooms": 1}}


def test_a_shared_source_every_worker_hears_alike_is_counted_once(censuses) -> None:
    a, b = censuses("a"), censuses("b")
    for each in (a, b):
        each.add("pushpin", lambda: {CHANNEL: 7}, shared=True)
        each.stop()  # ticked here, not by its thread
    a.sources["rooms"] = lambda: {CHANNEL: 1}
    a.tick()
    b.tick()
    assert a.counts() == {CHANNEL: {"a/rooms": 1, "pushpin": 7}}
    assert b.total(CHANNEL) == 8


def test_viewers_on_two_workers_see_the_total_and_a_killed_worker_leaves_it(workers, slug) -> None:
    a, b = workers
    on_a = SSEClient(a.url, f"/b/{slug}/events/")
    on_b = [SSEClient(b.url, f"/b/{slug}/events/") for _ in range(2)]
    players = Player(a.url), Player(b.url)
    try:
        on_a.wait_watching(3)
        on_b[0].wait_watching(3)
        assert [p.state(slug)["viewers"] for p in players] == [3, 3]
        b.proc.kill()  # SIGKILL, no goodbye: its count goes when its heartbeat expires
        b.proc.wait()
        on_a.wait_watching(1)
        assert players[0].state(slug)["viewers"] == 1
    finally:
        for client in (on_a, *on_b, *players):
            client.close()
