"""Publish an event: now, or once the current transaction commits."""

from __future__ import annotations

from django.db import transaction

from snake.stream import delivery


def send(channel: str, name: str, version: int, fragment: str) -> None:
    """Deliver now, on every path (this process, Redis, the GRIP proxy); blocks until sent."""
    delivery.deliver(channel, name, version, fragment)


def publish(channel: str, name: str, version: int, fragment: str) -> None:
    """Deliver once the current transaction commits; nothing if it rolls back."""
    # Delivery is immediate: sent inside a transaction that later rolls back, an event would
    # show viewers a state that never was. robust: the change has committed, so a failing
    # delivery is logged, never raised into the request that made it.
    transaction.on_commit(lambda: send(channel, name, version, fragment), robust=True)
