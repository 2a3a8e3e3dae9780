"""Behind a front that holds the stream's bytes back (nginx gzipping every type), the page polls.

deploy/nginx.py's nginx never lets an event of an open stream through (checked here with a raw
client too), so two browsers behind it see each other's moves only through the page's fallback.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from deploy.nginx import NGINX, Nginx
from tests.browser import needs_chromium, streaming
from tests.live import Player, Server, free_port

NGINX_MISSING = f"SKIPPED NGINX TESTS: no {NGINX} (apt-get install nginx; .ci/run does)"
pytestmark = pytest.mark.skipif(not os.path.exists(NGINX), reason=NGINX_MISSING)
# The first poll comes 4 s after the awake part loads, then one 2 s after each answer.
WAIT_MS = 20_000


@pytest.fixture(scope="module")
def nginx(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    front = Nginx(free_port(), server.url, tmp_path_factory.mktemp("nginx"))
    front.start()
    yield front
    front.stop()


def first_bytes(url: str, path: str, seconds: float) -> bytes:
    """What a gzip-accepting client receives from `path` within `seconds`."""
    host, port = url.removeprefix("http://").split(":")
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept-Encoding: gzip\r\n\r\n"
    received = b""
    with socket.create_connection((host, int(port)), timeout=seconds) as sock:
        sock.sendall(request.encode())
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            pass  # a stream never ends: what came until now is the answer
    return received


def test_nginx_holds_the_stream_back_that_the_server_sends_at_once(
    server: Server, nginx: Nginx, slug: str
) -> None:
    path = f"/b/{slug}/events/"
    assert b"event: position" in first_bytes(server.url, path, 2)
    assert first_bytes(nginx.url, path, 3) == b""  # not even the headers
    with Player(nginx.url) as player:  # the rest of the site works through it
        assert player.state(slug)["seq"] == 0


def polls(requests: list[str]) -> list[str]:
    return [url for url in requests if "poll=1" in url]


def recorded(page: Any) -> list[str]:
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    return urls


def logo_at(page: Any, x: int, y: int, seq: int) -> None:
    from playwright.sync_api import expect

    logo = expect(page.locator("#logo"))
    logo.to_have_attribute("data-seq", str(seq), timeout=WAIT_MS)
    logo.to_have_attribute("data-x", str(x))
    logo.to_have_attribute("data-y", str(y))


@pytest.mark.browser
@needs_chromium
def test_two_browsers_behind_nginx_see_each_others_moves_by_polling(
    browser: Any, nginx: Nginx, slug: str
) -> None:
    from playwright.sync_api import expect

    url = f"{nginx.url}/b/{slug}/"
    pages: list[Any] = []
    requests: list[list[str]] = []
    for _ in range(2):
        page = browser.new_context().new_page()
        requests.append(recorded(page))
        page.goto(url)
        streaming(page)
        pages.append(page)
    one, two = pages
    one.keyboard.press("d")
    logo_at(two, 505, 150, 1)
    two.keyboard.press("s")
    logo_at(one, 505, 155, 2)
    for page, urls in zip(pages, requests, strict=True):
        # The polls carried #presence too: both streams are open (nginx holds them).
        expect(page.locator("#presence")).to_have_attribute("data-viewers", "2", timeout=WAIT_MS)
        expect(page.locator("#fallback")).to_have_count(1)  # no event came: it still polls
        assert polls(urls), urls
    assert "poll=1" in nginx.access_log.read_text()
