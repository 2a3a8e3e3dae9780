"""Pushpin's stats packets read into subscriber counts (the real Pushpin: tests/test_cluster.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from snake.stream.pushpin_stats import Subscribers


def sub(channel: str, subscribers: int, edge: str = "pushpin-handler_1", **more: object) -> bytes:
    """A `sub` packet as Pushpin 1.36 sends it with stats_format=json."""
    body = {"channel": channel, "from": edge, "mode": "stream", "ttl": 60, **more}
    return b"sub J" + json.dumps({**body, "subscribers": subscribers}).encode()


def test_a_count_is_kept_per_channel_and_summed_over_edges() -> None:
    counts = Subscribers([])
    counts.take(sub("events-board-main", 3))
    counts.take(sub("events-board-main", 2, edge="pushpin-handler_2"))
    counts.take(sub("events-board-a%20b", 1))  # django-eventstream quotes the channel
    counts.take(sub("events-board-main", 4))  # the newer count replaces the older
    assert counts() == {"board-main": 6, "board-a b": 1}


def test_the_last_subscriber_leaving_forgets_the_channel() -> None:
    counts = Subscribers([])
    counts.take(sub("events-board-main", 3))
    counts.take(sub("events-board-main", 0, unavailable=True))
    assert counts() == {}


def test_a_count_not_repeated_within_its_ttl_is_forgotten() -> None:
    counts = Subscribers([])
    counts.take(sub("events-board-main", 3), now=time.monotonic() - 61)
    counts.take(sub("events-board-other", 1), now=time.monotonic() - 59)
    assert counts() == {"board-other": 1}


@pytest.mark.parametrize(
    "packet",
    [
        b"sub T12:7:channel,...",  # tnetstring: stats_format left at Pushpin's default
        b"conn J{}",  # other packet kinds
        b"sub J{not json",
        b'sub J{"channel": "events-board-main"}',
        sub("board-main", 3),  # a channel that is not django-eventstream's
    ],
)
def test_packets_that_say_no_stream_count_are_ignored(packet: bytes) -> None:
    counts = Subscribers([])
    counts.take(packet)
    assert counts() == {}


@pytest.fixture
def publisher(tmp_path: Path) -> Iterator[tuple[zmq.Socket[bytes], str]]:
    """A PUB socket where Pushpin's handler would bind its stats_spec."""
    spec = f"ipc://{tmp_path}/stats"
    with zmq.Context() as context, context.socket(zmq.PUB) as sock:
        sock.bind(spec)
        yield sock, spec


def test_counts_arrive_over_a_real_zeromq_socket(publisher) -> None:
    sock, spec = publisher
    counts = Subscribers([spec])
    counts.start()
    try:
        deadline = time.monotonic() + 15
        while counts() != {"board-main": 2} and time.monotonic() < deadline:
            sock.send(b"report J{}")  # filtered out by the subscription
            sock.send(sub("events-board-main", 2))  # until the late subscriber hears one
            time.sleep(0.05)
        assert counts() == {"board-main": 2}
    finally:
        counts.stop()
