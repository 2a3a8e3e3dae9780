"""At most SNAKE_MAX_STREAMS_PER_IP open event streams per client address (0: no cap).

A school's or a mobile carrier's NAT puts many real viewers behind one address, hence the
generous default of 100. The count is per process: a stream lives in the process that serves
it, so that process alone knows when it closes; with N workers behind one socket an address may
hold up to N times the cap.

Under Pushpin (GRIP) the cap does not apply: the proxy holds the streams, the worker answers a
stream request once with a hold (snake.stream.grip) and never sees it close.

snake.stream.consumers calls acquire() before it sends the stream's headers and answers 429 when it
gets None (snake.guards.refusal.too_many_streams); it releases the slot when the client disconnects.
"""

from __future__ import annotations

import threading
import weakref
from collections import Counter

from asgiref.typing import HTTPScope
from django.conf import settings

from snake.guards import clients

_open: Counter[str] = Counter()
_lock = threading.Lock()


class Slot:
    """One open stream counted against its client; release() it once the stream ends."""

    def __init__(self, key: str) -> None:
        self.key = key
        self._released = False

    def release(self) -> None:
        with _lock:
            if self._released:
                return
            self._released = True
            _open[self.key] -= 1
            if _open[self.key] <= 0:
                del _open[self.key]  # no entry left behind per address ever seen

    def release_with(self, owner: object) -> None:
        """Release the slot when `owner` is collected, should the stream never end otherwise."""
        weakref.finalize(owner, self.release)


def acquire(scope: HTTPScope, owner: object | None = None) -> Slot | None:
    """Count one more stream for the scope's client; None when it already has the maximum.

    owner: the stream's consumer; should it end without a disconnect (an error while
    opening), the slot is released when the owner is collected instead of leaking.
    """
    return acquire_address(clients.scope_address(scope), owner)


def acquire_address(address: str, owner: object | None = None) -> Slot | None:
    """Count one more stream for `address` (a request's REMOTE_ADDR), as acquire() does."""
    cap = settings.SNAKE_MAX_STREAMS_PER_IP
    key = clients.key(address)
    with _lock:
        if cap > 0 and _open[key] >= cap:
            return None
        _open[key] += 1
    slot = Slot(key)
    if owner is not None:
        slot.release_with(owner)
    return slot


def open_streams(address: str) -> int:
    """How many streams this process holds open for `address`."""
    with _lock:
        return _open.get(clients.key(address), 0)
