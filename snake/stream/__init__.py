"""A server-sent-events engine for Django: channels of named, versioned HTML fragments.

An owner registers a snapshot function for its channels and publishes
`(channel, event name, version, fragment)`; every viewer of the channel gets the newest
fragment of each name, never one at or below a version it has. See README, "The stream engine".
"""

from __future__ import annotations

from snake.stream.publish import publish, send
from snake.stream.registry import Snapshot, State, register, unregister

__all__ = ["Snapshot", "State", "publish", "register", "send", "unregister"]
