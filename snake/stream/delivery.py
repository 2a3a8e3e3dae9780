"""Deliver an event on every configured path, so that one broken path never stops the others.

The paths: this process's viewers (django-eventstream's listener queues), the other workers'
(Redis pub/sub, when EVENTSTREAM_REDIS is set) and the GRIP proxy's (Pushpin, when GRIP_PROXIES
is set). The version travels beside the fragment as the event's id, to Redis too; the GRIP proxy
gets the fragment alone, which it sends to browsers as is.

django-eventstream 5.3.4's send_event publishes to Redis and then to the GRIP proxy: a Redis
error raises before the GRIP publish and skips local delivery, and each process's Redis listener
dies with its connection and is never restarted. So this module publishes each path itself and
supervises the listener; the fixes are kept small, so that they can go upstream.
"""

from __future__ import annotations

import asyncio
import json

from django_eventstream import eventstream
from django_eventstream.event import Event
from django_eventstream.utils import publish_event
from django_eventstream.views import ListenerManager, RedisListener, get_listener_manager
from redis.exceptions import RedisError

from snake.health import Health
from snake.stream import handoff

REDIS_CHANNEL = "events_channel"  # django-eventstream's pub/sub channel name
RECONNECT_MAX_SECONDS = 5.0

# Bumped whenever this process may have stopped hearing every publish (see hears_every_publish),
# so that a room stops trusting a state it learnt before.
_epoch = 0
_subscribed = False


def epoch() -> int:
    return _epoch


def hears_every_publish() -> bool:
    """Whether every publish, from any worker, reaches this process's rooms.

    Without Redis only this process's own do, and they are all there is for its viewers; with
    Redis, every worker's, while our listener is subscribed and Redis has not failed.
    """
    if eventstream.redis_client is None:
        return True
    return _subscribed and not redis_health.failing


def _hearing(subscribed: bool) -> None:
    global _epoch, _subscribed
    _subscribed = subscribed
    _epoch += 1


redis_health = Health("Redis", "moves reach only this worker's viewers and the GRIP proxy")
grip_health = Health("GRIP proxy", "viewers held by the proxy miss moves until it is back")


def _local(channel: str, name: str, version: int, fragment: str) -> None:
    event = Event(channel, name, fragment, id=version)
    get_listener_manager().add_to_queues(channel, event)
    handoff.after_publish()


def _redis(channel: str, name: str, version: int, fragment: str) -> None:
    # django-eventstream's own message, which its listener turns back into an Event.
    message = {"channel": channel, "event_type": name, "data": fragment, "pub_id": version}
    eventstream.redis_client.publish(REDIS_CHANNEL, json.dumps(message))


def _grip(channel: str, name: str, fragment: str) -> None:
    try:
        publish_event(channel, name, fragment, None, None, blocking=True)
    except (ValueError, OSError) as exc:  # pubcontrol reports failures as ValueError
        grip_health.failed(exc)
    else:
        grip_health.ok()


def deliver(channel: str, name: str, version: int, fragment: str) -> None:
    """Send to this process's viewers, other workers (Redis) and the GRIP proxy, blocking."""
    if eventstream.redis_client is None:
        _local(channel, name, version, fragment)
    else:
        try:
            _redis(channel, name, version, fragment)
        except RedisError as exc:
            redis_health.failed(exc)
            _hearing(_subscribed)
            # Redis delivers to our own viewers too; without it, deliver here directly.
            _local(channel, name, version, fragment)
        else:
            redis_health.ok()
    _grip(channel, name, fragment)


def resync_local_viewers(manager: ListenerManager) -> None:
    """Make every local room re-read its channel's snapshot (events may have been missed)."""
    with manager.lock:
        listeners = {
            listener for group in manager.listeners_by_channel.values() for listener in group
        }
        for listener in listeners:
            listener.overflow = True
            listener.wake_threadsafe()


_running: set[asyncio.Task[None]] = set()


async def _listen_forever(manager: ListenerManager) -> None:
    # django-eventstream starts this with loop.create_task() and drops the task: the loop holds
    # tasks weakly, so without a reference of ours it is garbage-collected mid-await.
    task = asyncio.current_task()
    if task is not None:
        _running.add(task)
        task.add_done_callback(_running.discard)
    delay = 0.1
    while True:
        listener = RedisListener()
        try:
            await listener.pubsub.subscribe(REDIS_CHANNEL)
            redis_health.ok()
            _hearing(True)
            # Every time, the first too: a room may have read its state before we subscribed,
            # and missed a publish between its read and now.
            resync_local_viewers(manager)
            delay = 0.1
            await listener.listen()
        except (RedisError, OSError) as exc:
            redis_health.failed(exc)
        finally:
            _hearing(False)
            await listener.pubsub.aclose()
            await listener.redis_client.aclose()
        await asyncio.sleep(delay)
        delay = min(delay * 2, RECONNECT_MAX_SECONDS)


def supervise_redis_listener() -> None:
    """Replace django-eventstream's one-shot Redis listener with one that reconnects."""
    manager = get_listener_manager()
    if manager.redis_listener is not None:
        manager.start_redis_listener = lambda: _listen_forever(manager)
