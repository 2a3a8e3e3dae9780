"""A server-sent-events engine for Django: channels of named, versioned HTML fragments.

An owner registers a snapshot function for its channels and publishes
`(channel, event name, version, fragment)`; every viewer of the channel gets the newest
fragment of each name, never one at or below a version it has. An owner that registers a
`presence` function also gets a `presence` event: how many watch the channel, at most once a
second. See README, "The stream engine".
"""

from __future__ import annotations

from snake.stream.hub import watching
from snake.stream.publish import publish, send
from snake.stream.registry import Presence, Snapshot, State, register, unregister

__all__ = [
    "Presence", "Snapshot", "State", "publish", "register", "send", "unregister", "watching",
]  # fmt: skip
