"""Who owns a channel's state: each owner registers one snapshot function for its channels.

An owner may also register how to show a channel's audience (`presence`): the engine counts
who watches and asks the owner for the fragment; an owner that registers none shows none.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from django.core.exceptions import ImproperlyConfigured

# event name -> (version, fragment): what a viewer must be shown to be up to date.
State = Mapping[str, tuple[int, str]]
Snapshot = Callable[[str], State]
# (channel, how many watch it) -> the fragment of the `presence` event
Presence = Callable[[str, int], str]

_owners: dict[str, Snapshot] = {}
_presences: dict[str, Presence] = {}


def register(prefix: str, snapshot: Snapshot, presence: Presence | None = None) -> None:
    """Make `snapshot(channel)` the state of every channel whose name starts with `prefix`."""
    if not prefix:
        raise ImproperlyConfigured("a channel prefix must not be empty, e.g. 'board-'")
    _owners[prefix] = snapshot
    if presence is None:
        _presences.pop(prefix, None)
    else:
        _presences[prefix] = presence


def unregister(prefix: str) -> None:
    _owners.pop(prefix, None)
    _presences.pop(prefix, None)


def _owner(channel: str) -> str | None:
    """Return the prefix of the channel's owner: the longest registered one it starts with."""
    return max((prefix for prefix in _owners if channel.startswith(prefix)), key=len, default=None)


def snapshot(channel: str) -> State:
    """Return the channel's current state, from the owner with the longest matching prefix."""
    owner = _owner(channel)
    if owner is None:
        raise ImproperlyConfigured(
            f"no snapshot registered for channel {channel!r}: call "
            "snake.stream.register(prefix, snapshot) in your AppConfig.ready()"
        )
    return _owners[owner](channel)


def presence(channel: str) -> Presence | None:
    """Return how the channel's owner shows its audience; None if it shows none or has no owner."""
    owner = _owner(channel)
    return None if owner is None else _presences.get(owner)
