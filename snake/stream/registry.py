"""Who owns a channel's state: each owner registers one snapshot function for its channels."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from django.core.exceptions import ImproperlyConfigured

# event name -> (version, fragment): what a viewer must be shown to be up to date.
State = Mapping[str, tuple[int, str]]
Snapshot = Callable[[str], State]

_owners: dict[str, Snapshot] = {}


def register(prefix: str, snapshot: Snapshot) -> None:
    """Make `snapshot(channel)` the state of every channel whose name starts with `prefix`."""
    if not prefix:
        raise ImproperlyConfigured("a channel prefix must not be empty, e.g. 'board-'")
    _owners[prefix] = snapshot


def unregister(prefix: str) -> None:
    _owners.pop(prefix, None)


def snapshot(channel: str) -> State:
    """Return the channel's current state, from the owner with the longest matching prefix."""
    owners = [prefix for prefix in _owners if channel.startswith(prefix)]
    if not owners:
        raise ImproperlyConfigured(
            f"no snapshot registered for channel {channel!r}: call "
            "snake.stream.register(prefix, snapshot) in your AppConfig.ready()"
        )
    return _owners[max(owners, key=len)](channel)
