"""A channel that is not the board: named counters, each event's version its count.

The engine's tests stream it to prove the engine stands alone: nothing here imports board code.
"""

from __future__ import annotations

import threading

from snake import stream

PREFIX = "count-"


def fragment(name: str, n: int) -> str:
    return f'<output id="{name}" data-n="{n}">{n}</output>'


class Counter:
    """The owner of every `count-…` channel: keeps the counts, snapshots and publishes them."""

    def __init__(self, names: tuple[str, ...] = ("count",)) -> None:
        self.names = names
        self.counts: dict[tuple[str, str], int] = {}
        self.lock = threading.Lock()

    def snapshot(self, channel: str) -> stream.State:
        with self.lock:
            counts = {name: self.counts.get((channel, name), 0) for name in self.names}
        return {name: (n, fragment(name, n)) for name, n in counts.items()}

    def set(self, channel: str, name: str, n: int) -> None:
        """Store a count without publishing it (as a publish that got lost would leave it)."""
        with self.lock:
            self.counts[(channel, name)] = n

    def bump(self, channel: str, name: str = "count") -> int:
        """Count one more and publish it; return the new count."""
        with self.lock:
            n = self.counts[(channel, name)] = self.counts.get((channel, name), 0) + 1
        stream.send(channel, name, n, fragment(name, n))
        return n
