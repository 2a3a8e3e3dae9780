"""The move limit: the bucket (LocMem and a real Redis), the 429 answers, and the page's note."""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from logging.handlers import BufferingHandler

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings

from deploy.redis import Redis
from snake import board, channel
from snake.guards import ratelimit
from tests.browser import streaming
from tests.listeners import Recording
from tests.live import Player, Server, free_port

LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
JSON = {"HTTP_ACCEPT": "application/json"}


def redis_caches(url: str) -> dict:
    return {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}}


@pytest.fixture(params=["locmem", "redis"])
def address(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run with the bucket in LocMem, then in a real Redis; yield an address not used before."""
    if request.param == "locmem":
        config = LOCMEM
    else:
        config = redis_caches(request.getfixturevalue("redis").url)
    with override_settings(CACHES=config):
        yield f"2001:db8:{next(_fresh):x}::1"


_fresh = itertools.count(1)


def spend(address: str, count: int, now: float) -> list[float]:
    return [ratelimit.take(address, now=now) for _ in range(count)]


@override_settings(SNAKE_MOVES_PER_SECOND=1, SNAKE_MOVES_BURST=40)
def test_many_threads_at_once_pass_exactly_the_burst(address: str) -> None:
    now = time.time()  # one instant for every thread: nothing refills in between
    gate = threading.Barrier(20)

    def burst(_: int) -> list[float]:
        gate.wait()
        return spend(address, 10, now)

    with ThreadPoolExecutor(20) as pool:
        waits = [w for ws in pool.map(burst, range(20)) for w in ws]
    assert waits.count(0.0) == 40
    assert len(waits) == 200


@override_settings(SNAKE_MOVES_PER_SECOND=10, SNAKE_MOVES_BURST=2)
def test_the_bucket_refills_at_the_rate_and_holds_at_most_the_burst(address: str) -> None:
    # A whole second, so that t + 0.1 turns into whole microseconds without rounding one off.
    t = float(int(time.time()))
    assert spend(address, 2, t) == [0.0, 0.0]
    assert ratelimit.take(address, now=t) == pytest.approx(0.1, abs=2e-6)
    assert ratelimit.take(address, now=t + 0.05) == pytest.approx(0.05, abs=2e-6)  # no change
    assert ratelimit.take(address, now=t + 0.1) == 0.0  # one interval later: one move
    assert ratelimit.take(address, now=t + 0.1) > 0
    # Idle for 10 s is still a bucket of 2, not of 100.
    assert [w == 0.0 for w in spend(address, 3, t + 10)] == [True, True, False]


@override_settings(SNAKE_MOVES_PER_SECOND=10, SNAKE_MOVES_BURST=1)
def test_addresses_have_their_own_buckets(address: str) -> None:
    now = time.time()
    assert ratelimit.take(address, now=now) == 0.0
    assert ratelimit.take(address, now=now) > 0
    assert ratelimit.take("203.0.113.99", now=now) == 0.0


@pytest.mark.parametrize("limits", [(0, 40), (20, 0)])
def test_zero_turns_the_limit_off(limits: tuple[int, int]) -> None:
    rate, burst = limits
    with override_settings(SNAKE_MOVES_PER_SECOND=rate, SNAKE_MOVES_BURST=burst):
        assert set(spend("198.51.100.250", 100, time.time())) == {0.0}


@override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}})
def test_a_cache_it_cannot_update_atomically_is_refused_with_the_fix() -> None:
    with pytest.raises(ImproperlyConfigured, match="SNAKE_MOVES_PER_SECOND=0"):
        ratelimit.take("198.51.100.1")


def test_moves_go_through_while_redis_is_down_logged_once_per_outage(redis: Redis) -> None:
    closed = redis_caches(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    seen = BufferingHandler(100)
    log = logging.getLogger("snake.health")  # "snake" does not propagate to caplog's root
    log.addHandler(seen)
    try:
        with override_settings(SNAKE_MOVES_PER_SECOND=1, SNAKE_MOVES_BURST=1):
            for _outage in range(2):
                with override_settings(CACHES=closed):
                    assert set(spend("198.51.100.2", 3, time.time())) == {0.0}
                with override_settings(CACHES=redis_caches(redis.url)):
                    assert spend("198.51.100.3", 3, time.time())[1:] != [0.0, 0.0]  # on again
    finally:
        log.removeHandler(seen)
    messages = [r.getMessage() for r in seen.buffer]
    down, back = "Redis for the move limit is down", "Redis for the move limit is back"
    # Once as each outage starts and once as it ends, not per move.
    assert [m.split(" (")[0] for m in messages] == [down, back, down, back], messages
    assert "moves are let through" in messages[0]


# The view: 429, Retry-After, and nothing moved or published.


@pytest.fixture
def listener(listen: Callable[[str], Recording]) -> Recording:
    return listen(channel.name("slow"))


@pytest.mark.django_db(transaction=True)
@override_settings(SNAKE_MOVES_PER_SECOND=1, SNAKE_MOVES_BURST=1)
def test_a_move_over_the_limit_is_429_and_changes_nothing(
    client: Client, listener: Recording
) -> None:
    assert client.post("/b/slow/move", {"direction": "d"}, **JSON).json()["seq"] == 1
    as_json = client.post("/b/slow/move", {"direction": "d"}, **JSON)
    assert as_json.status_code == 429
    assert 0 < as_json.json()["retry_after"] <= 1
    assert "Slow down" in as_json.json()["error"]
    assert as_json["Retry-After"] == "1"
    htmx = client.post("/b/slow/move", {"direction": "d"}, HTTP_HX_REQUEST="true")
    assert htmx.status_code == 429 and htmx["Retry-After"] == "1"
    assert htmx.content.decode().strip().startswith('<p class="note">Slow down')
    text = client.post("/b/slow/move", {"direction": "d"})
    assert text.status_code == 429 and text["Content-Type"].startswith("text/plain")
    bad = client.post("/b/slow/move", {"direction": "nope"})  # bad requests spend it too
    assert bad.status_code == 429
    assert board.current("slow").seq == 1
    assert len(listener.queued(channel.name("slow"))) == 1


def test_two_servers_on_one_redis_share_the_bucket(redis: Redis, tmp_path, slug: str) -> None:
    env = {"REDIS_URL": redis.url, "SNAKE_MOVES_PER_SECOND": "1", "SNAKE_MOVES_BURST": "1"}
    with contextlib.ExitStack() as running:
        urls = []
        for name in ("one", "two"):
            server = Server(tmp_path / name, env=env)
            server.start()
            running.callback(server.stop)
            urls.append(server.url)
        with Player(urls[0]) as a, Player(urls[1]) as b:
            assert a.move(slug, "d").status_code == 200
            refused = b.move(slug, "d")  # the same address, another process
            assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"


# The page: the note in a real Chromium.


@pytest.fixture(scope="module")
def one_move_a_second(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"SNAKE_MOVES_PER_SECOND": "1", "SNAKE_MOVES_BURST": "1"}
    server = Server(tmp_path_factory.mktemp("limited"), env=env)
    server.start()
    yield server
    server.stop()


@pytest.mark.browser
def test_keys_faster_than_the_limit_show_a_note_that_fades(
    browser, one_move_a_second: Server, slug: str
) -> None:
    from playwright.sync_api import expect

    page = browser.new_context().new_page()
    page.goto(f"{one_move_a_second.url}/b/{slug}/")
    streaming(page)
    logo, note = page.locator("#logo"), page.locator("#status .note")
    expect(logo).to_have_attribute("data-seq", "0")
    page.keyboard.press("d")
    expect(logo).to_have_attribute("data-seq", "1")
    page.keyboard.press("s")  # within the second: refused
    expect(note).to_be_visible()
    expect(note).to_contain_text("Slow down")
    expect(logo).to_have_attribute("data-seq", "1")
    expect(note).to_be_hidden(timeout=10_000)  # the CSS fade, with nothing left to click
