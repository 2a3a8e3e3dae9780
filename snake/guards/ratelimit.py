"""Moves per client address: a token bucket in Django's cache, updated atomically.

SNAKE_MOVES_PER_SECOND (default 20) refill a bucket of SNAKE_MOVES_BURST (default 40); either at
0 turns the limit off. The key is the client's address (snake.guards.clients), never the session.

The bucket is one number per client (GCRA): the time at which it will be full again. A move
pushes that time one interval (1 / rate) on, starting from now if the bucket was already full,
and is refused when that would put it more than `burst` intervals ahead of now; a refused move
changes nothing and learns how long until one interval has drained.

Updated atomically, because a read-then-write bucket lets concurrent moves all read the same
state and all pass: with Redis (REDIS_URL, RedisCache, one bucket for every worker) a Lua script
reads and writes it in one step; with LocMemCache, which lives in this process, a process lock
does. Any other cache backend is refused with ImproperlyConfigured. Redis being down lets moves
through (logged once per outage, by snake.health): the limit must not stop the game, as no
delivery path stops another.
"""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.core.cache import BaseCache, caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.core.exceptions import ImproperlyConfigured
from redis.exceptions import RedisError

from snake.guards import clients
from snake.health import Health

US = 1_000_000  # the bucket counts integer microseconds
# KEYS[1] the bucket; ARGV now, interval, burst * interval (µs). Returns the µs to wait, or 0
# after spending one move. "%.0f": Lua's tostring prints 1.7e+15 and would lose microseconds.
SCRIPT = """
local now, interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local full_at = math.max(tonumber(redis.call('GET', KEYS[1]) or 0), now) + interval
if full_at - now > tolerance then return full_at - now - tolerance end
redis.call('SET', KEYS[1], string.format('%.0f', full_at), 'PX', math.ceil((full_at - now) / 1000))
return 0
"""

_lock = threading.Lock()
# Not "Redis" alone: delivery's Health logs "Redis is down" too, and one outage is one line each.
redis_health = Health("Redis for the move limit", "the limit is off: moves are let through")


def enabled() -> bool:
    return settings.SNAKE_MOVES_PER_SECOND > 0 and settings.SNAKE_MOVES_BURST > 0


def take(address: str, now: float | None = None) -> float:
    """Spend one move from the bucket of `address`: 0.0 when it may move, else seconds to wait.

    now: the wall-clock time in seconds (time.time(), shared by every worker); tests pass
    their own to step the clock.
    """
    if not enabled():
        return 0.0
    interval = max(1, round(US / settings.SNAKE_MOVES_PER_SECOND))
    tolerance = interval * settings.SNAKE_MOVES_BURST
    now_us = round((time.time() if now is None else now) * US)
    cache = caches["default"]
    name = f"snake:moves:{clients.key(address)}"
    if isinstance(cache, RedisCache):
        wait = _take_redis(cache, name, now_us, interval, tolerance)
    elif isinstance(cache, LocMemCache):
        wait = _take_local(cache, name, now_us, interval, tolerance)
    else:
        raise ImproperlyConfigured(
            f"the move limit needs CACHES['default'] to be RedisCache or LocMemCache (got "
            f"{type(cache).__name__}), which it can update atomically; or set "
            "SNAKE_MOVES_PER_SECOND=0 to turn it off"
        )
    return wait / US


def _take_local(cache: BaseCache, name: str, now: int, interval: int, tolerance: int) -> int:
    # LocMemCache is this process's memory and only this function writes these keys: the lock
    # makes the read and the write one step.
    with _lock:
        stored: int = cache.get(name, 0)
        full_at = max(stored, now) + interval
        if full_at - now > tolerance:
            return full_at - now - tolerance
        cache.set(name, full_at, timeout=(full_at - now) / US)  # a full bucket is no entry
        return 0


def _take_redis(cache: RedisCache, name: str, now: int, interval: int, tolerance: int) -> int:
    key = cache.make_and_validate_key(name)
    # Django's cache API has no script call; its client class hands out redis-py clients.
    backend: RedisCacheClient = cache._cache  # type: ignore[attr-defined]  # private, so unstubbed
    client = backend.get_client(key, write=True)
    try:
        wait = int(client.eval(SCRIPT, 1, key, now, interval, tolerance))
    except RedisError as exc:
        redis_health.failed(exc)
        return 0
    redis_health.ok()
    return wait
