"""Deliver an event on every configured path, so that one broken path never stops the others.

django-eventstream 5.3.4 publishes to Redis (when EVENTSTREAM_REDIS is set) and then to the
GRIP proxy; a Redis error raises before the GRIP publish and skips local delivery, and each
process's Redis listener dies with its connection and is never restarted. These fixes are kept
here, small, so that they can go upstream.
"""

from __future__ import annotations

import asyncio
import logging

from django.conf import settings
from django_eventstream import send_event
from django_eventstream.event import Event
from django_eventstream.utils import publish_event
from django_eventstream.views import ListenerManager, RedisListener, get_listener_manager
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)
REDIS_CHANNEL = "events_channel"  # django-eventstream's pub/sub channel name
RECONNECT_MAX_SECONDS = 5.0


class Health:
    """Log a path's failure once when it starts and once when it ends, not per event."""

    def __init__(self, name: str, hint: str) -> None:
        self.name, self.hint, self.failing = name, hint, False

    def failed(self, exc: BaseException) -> None:
        if not self.failing:
            self.failing = True
            logger.error("%s is down (%s); %s", self.name, exc, self.hint)

    def ok(self) -> None:
        if self.failing:
            self.failing = False
            logger.warning("%s is back", self.name)


redis_health = Health("Redis", "moves reach only this worker's viewers and the GRIP proxy")
grip_health = Health("GRIP proxy", "viewers held by the proxy miss moves until it is back")


def _publish_grip(channel: str, event_type: str, data: str) -> None:
    try:
        publish_event(channel, event_type, data, None, None, blocking=True)
    except (ValueError, OSError) as exc:  # pubcontrol reports failures as ValueError
        grip_health.failed(exc)
    else:
        grip_health.ok()


def _deliver_without_redis(channel: str, event_type: str, data: str) -> None:
    get_listener_manager().add_to_queues(channel, Event(channel, event_type, data))
    _publish_grip(channel, event_type, data)


def deliver(channel: str, event_type: str, data: str) -> None:
    """Send to this process's viewers, other workers (Redis) and the GRIP proxy, blocking."""
    if not hasattr(settings, "EVENTSTREAM_REDIS"):
        _deliver_without_redis(channel, event_type, data)
        return
    try:
        # Blocking publishes: the caller holds the board's lock, which keeps them in order.
        send_event(channel, event_type, data, json_encode=False, async_publish=False)
    except RedisError as exc:
        redis_health.failed(exc)
        # Redis delivers to our own viewers too; without it, deliver here directly.
        _deliver_without_redis(channel, event_type, data)
    except (ValueError, OSError) as exc:
        redis_health.ok()
        grip_health.failed(exc)
    else:
        redis_health.ok()
        grip_health.ok()


def resync_local_viewers(manager: ListenerManager) -> None:
    """Make every local stream re-read its board's state (events may have been missed)."""
    with manager.lock:
        listeners = {
            listener for group in manager.listeners_by_channel.values() for listener in group
        }
        for listener in listeners:
            listener.overflow = True
            listener.wake_threadsafe()


_running: set[asyncio.Task] = set()


async def _listen_forever(manager: ListenerManager) -> None:
    # django-eventstream starts this with loop.create_task() and drops the task: the loop holds
    # tasks weakly, so without a reference of ours it is garbage-collected mid-await.
    task = asyncio.current_task()
    _running.add(task)
    task.add_done_callback(_running.discard)
    delay = 0.1
    while True:
        listener = RedisListener()
        try:
            await listener.pubsub.subscribe(REDIS_CHANNEL)
            if redis_health.failing:
                resync_local_viewers(manager)
            redis_health.ok()
            delay = 0.1
            await listener.listen()
        except (RedisError, OSError) as exc:
            redis_health.failed(exc)
        finally:
            await listener.pubsub.aclose()
            await listener.redis_client.aclose()
        await asyncio.sleep(delay)
        delay = min(delay * 2, RECONNECT_MAX_SECONDS)


def supervise_redis_listener() -> None:
    """Replace django-eventstream's one-shot Redis listener with one that reconnects."""
    manager = get_listener_manager()
    if manager.redis_listener is not None:
        manager.start_redis_listener = lambda: _listen_forever(manager)
