"""Which owner answers for a channel's state."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.exceptions import ImproperlyConfigured

from snake import stream
from snake.stream import registry


@pytest.fixture
def owners() -> Iterator[None]:
    stream.register("t-", lambda channel: {"who": (1, "short")})
    stream.register("t-long-", lambda channel: {"who": (2, f"long {channel}")})
    yield
    stream.unregister("t-")
    stream.unregister("t-long-")


def test_the_longest_matching_prefix_owns_a_channel(owners: None) -> None:
    assert registry.snapshot("t-a") == {"who": (1, "short")}
    assert registry.snapshot("t-long-a") == {"who": (2, "long t-long-a")}


def test_a_channel_nobody_owns_says_how_to_register_one(owners: None) -> None:
    with pytest.raises(ImproperlyConfigured, match=r"snake\.stream\.register\(prefix, snapshot\)"):
        registry.snapshot("nobody-x")


@pytest.mark.django_db
def test_the_board_registers_its_channels() -> None:
    assert set(registry.snapshot("board-reg")) == {"board", "position"}


def test_an_empty_prefix_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match="must not be empty"):
        stream.register("", lambda channel: {})


def test_the_owner_of_a_channel_says_how_its_audience_looks(owners: None) -> None:
    def shown(channel: str, viewers: int) -> str:
        return f"{viewers} on {channel}"

    stream.register("t-seen-", lambda channel: {}, presence=shown)
    try:
        assert registry.presence("t-seen-a") is shown
        assert registry.presence("t-long-a") is None  # its owner shows no audience
        assert registry.presence("nobody-x") is None
    finally:
        stream.unregister("t-seen-")
    assert registry.presence("t-seen-a") is None
