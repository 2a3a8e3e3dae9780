"""The per-address stream cap: the counter, then against live servers (daphne and uvicorn)."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator

import pytest
from django.test import override_settings
from django.utils import translation

from snake.guards import refusal, streamcap
from tests.live import Server
from tests.sse import SSEClient


def scope(address: str) -> dict:
    return {"client": [address, 40000], "headers": []}


@override_settings(SNAKE_MAX_STREAMS_PER_IP=2)
def test_an_address_gets_the_cap_and_no_more_until_one_closes() -> None:
    first, second = (streamcap.acquire(scope("198.51.100.1")) for _ in range(2))
    assert first is not None and second is not None
    assert streamcap.acquire(scope("198.51.100.1")) is None
    other = streamcap.acquire(scope("198.51.100.2"))  # another address has its own count
    assert other is not None
    assert streamcap.open_streams("198.51.100.1") == 2
    first.release()
    first.release()  # a second release changes nothing
    assert streamcap.open_streams("198.51.100.1") == 1
    third = streamcap.acquire(scope("198.51.100.1"))
    assert third is not None
    for slot in (second, third, other):
        slot.release()
    assert streamcap.open_streams("198.51.100.1") == 0


@override_settings(SNAKE_MAX_STREAMS_PER_IP=0)
def test_zero_turns_the_cap_off() -> None:
    slots = [streamcap.acquire(scope("198.51.100.3")) for _ in range(500)]
    assert None not in slots
    for slot in slots:
        slot.release()


@override_settings(SNAKE_MAX_STREAMS_PER_IP=1)
def test_a_slot_is_released_when_its_owner_goes_without_a_disconnect() -> None:
    class Consumer:
        pass

    owner = Consumer()
    assert streamcap.acquire(scope("198.51.100.4"), owner=owner) is not None
    assert streamcap.acquire(scope("198.51.100.4")) is None
    del owner
    gc.collect()
    assert streamcap.open_streams("198.51.100.4") == 0


@override_settings(SNAKE_MAX_STREAMS_PER_IP=7)
def test_the_refusal_says_how_many_and_when_to_retry() -> None:
    error, headers = refusal.too_many_streams()
    assert "at most 7" in error
    assert headers == {"Retry-After": str(refusal.STREAM_RETRY_AFTER)}


@override_settings(SNAKE_MAX_STREAMS_PER_IP=7)
def test_the_refusal_speaks_the_active_language() -> None:
    with translation.override("es"):
        error, _ = refusal.too_many_streams()
    assert error == (
        "Demasiados flujos de eventos desde tu dirección IP: como máximo 7 a la vez. Cierra "
        f"alguno o vuelve a intentarlo dentro de {refusal.STREAM_RETRY_AFTER} s."
    )


@pytest.fixture(scope="module", params=["daphne", "uvicorn"])
def capped(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[Server]:
    env = {"SNAKE_MAX_STREAMS_PER_IP": "2", "SNAKE_TRUSTED_PROXIES": "127.0.0.1"}
    server = Server(tmp_path_factory.mktemp("capped"), env=env, server=request.param)
    server.start()
    yield server
    server.stop()


def open_stream(url: str, slug: str, **headers: str) -> SSEClient:
    viewer = SSEClient(url, f"/b/{slug}/events/", headers=headers)
    if viewer.status == 200:
        viewer.wait_for(lambda ps: len(ps) >= 1)
    return viewer


def test_a_third_stream_from_one_address_is_429_until_one_closes(capped, slug) -> None:
    first, second = open_stream(capped.url, slug), open_stream(capped.url, slug)
    viewers = [first, second]
    try:
        assert first.status == second.status == 200
        third = open_stream(capped.url, slug)
        assert third.status == 429
        assert third.headers["Retry-After"] == str(refusal.STREAM_RETRY_AFTER)
        assert third.headers["X-Content-Type-Options"] == "nosniff"
        assert "Content-Security-Policy" in third.headers
        assert b"at most 2" in third.response.read()
        third.close()
        # Another client behind the trusted proxy has its own count.
        forwarded = open_stream(capped.url, slug, **{"X-Forwarded-For": "198.51.100.8"})
        viewers.append(forwarded)
        assert forwarded.status == 200
        first.close()
        # The server learns of the close when it reads the socket: wait for it, then retry.
        deadline = time.monotonic() + 15
        while (again := open_stream(capped.url, slug)).status == 429:
            again.close()
            assert time.monotonic() < deadline, "the closed stream was never released"
            time.sleep(0.05)
        viewers.append(again)
        assert again.status == 200
    finally:
        for viewer in viewers:
            viewer.close()
