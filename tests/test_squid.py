"""Real Chromium through Debian's squid with a corporate proxy's rules (deploy/squid.py).

The board plays through it: two browsers move each other's logo, and squid's access log names
the page, the stream and the moves. A websocket through the same proxy never opens, while the
same websocket from a browser without the proxy does: the proxy is what refuses it.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy import serve
from deploy.squid import SQUID, Squid
from tests.browser import launched, needs_chromium, streaming
from tests.live import ROOT, Server, free_port, wait_for_port

SQUID_MISSING = f"SKIPPED SQUID TESTS: no {SQUID} (apt-get install squid; .ci/run does)"
pytestmark = [
    pytest.mark.browser,
    needs_chromium,
    pytest.mark.skipif(not os.path.exists(SQUID), reason=SQUID_MISSING),
]
sync_api = pytest.importorskip("playwright.sync_api")

WAIT_MS = 30_000  # generous: two shared cores, a proxy and two servers
# Resolves with what the socket saw; a socket that neither opens nor fails resolves as "hung".
OPEN_WEBSOCKET = """url => new Promise(resolve => {
  const seen = [];
  const ws = new WebSocket(url);
  ws.onopen = () => seen.push("open");
  ws.onerror = () => seen.push("error");
  ws.onmessage = (e) => {
    seen.push(e.data.startsWith('<div id="logo"') ? "logo" : e.data);
    ws.close();
  };
  ws.onclose = () => resolve(seen);
  setTimeout(() => resolve([...seen, "hung"]), 20000);
})"""


@pytest.fixture
def squid() -> Iterator[Squid]:
    # Under /tmp, not tmp_path: squid writes its logs as user proxy, who cannot enter pytest's
    # 0700 directories when the tests run as root.
    with tempfile.TemporaryDirectory(prefix="snake-squid-") as workdir:
        proxy = Squid(Path(workdir))
        try:
            proxy.start()
            yield proxy
        finally:
            proxy.stop()  # also one that never came up: it may still be running


@pytest.fixture
def tutorial(tmp_path: Path) -> Iterator[str]:
    """bench/tutorial.py's websocket server on a free port, as `make bench` serves it."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    argv = serve.command("daphne", port, app="bench.tutorial:application")
    with open(tmp_path / "tutorial.log", "wb") as log:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, proc)
            yield f"127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(10)


def through(squid: Squid) -> list[str]:
    # Chromium never proxies loopback unless told: "<-loopback>" removes the implicit bypass.
    return [f"--proxy-server={squid.url}", "--proxy-bypass-list=<-loopback>"]


def open_board(browser: Any, url: str) -> Any:
    page = browser.new_context().new_page()
    page.goto(url)
    streaming(page)
    return page


def logo_at(page: Any, x: int, y: int) -> None:
    logo = sync_api.expect(page.locator("#logo"))
    logo.to_have_attribute("data-x", str(x), timeout=WAIT_MS)
    logo.to_have_attribute("data-y", str(y), timeout=WAIT_MS)


def logged(squid: Squid) -> dict[tuple[str, str], list[str]]:
    """Squid's access log: the results (e.g. TCP_MISS/200) of each method and URL requested."""
    seen: dict[tuple[str, str], list[str]] = {}
    text = squid.access_log.read_text() if squid.access_log.exists() else ""
    for fields in (line.split() for line in text.splitlines()):
        seen.setdefault((fields[5], fields[6]), []).append(fields[3])
    return seen


def wait_logged(squid: Squid, *wanted: tuple[str, str], timeout: float = 30) -> None:
    """Wait until squid has logged each wanted request; a request is logged once it ends."""
    deadline = time.monotonic() + timeout
    while not set(wanted) <= logged(squid).keys():
        assert time.monotonic() < deadline, f"not in squid's log: {wanted}: {logged(squid)}"
        time.sleep(0.1)


def test_two_browsers_through_squid_move_each_others_logo(
    server: Server, squid: Squid, slug: str
) -> None:
    url = f"{server.url}/b/{slug}/"
    with launched(through(squid)) as browser:
        one, two = open_board(browser, url), open_board(browser, url)
        logo_at(two, 500, 150)
        one.keyboard.press("d")
        logo_at(two, 505, 150)
        two.keyboard.press("s")
        logo_at(one, 505, 155)
        for page in (one, two):
            page.context.close()  # ends the streams: squid logs a request when it ends
    board, stream, move = ("GET", url), ("GET", f"{url}events/"), ("POST", f"{url}move")
    wait_logged(squid, board, stream, move)
    log = logged(squid)
    assert set(log[board]) == {"TCP_MISS/200"}, log  # from the server: squid caches nothing
    assert log[move] == ["TCP_MISS/204"] * 2, log  # htmx's answer to each key
    # One stream per page, each ended by the browser (squid calls that aborted), none refused.
    assert log[stream] == ["TCP_MISS_ABORTED/200"] * 2, log


def test_a_websocket_through_squid_never_opens_and_opens_without_it(
    squid: Squid, tutorial: str
) -> None:
    page_url, socket_url = f"http://{tutorial}/", f"ws://{tutorial}/ws/b/main/"
    with launched(through(squid)) as browser:
        page = browser.new_context().new_page()
        page.goto(page_url)  # plain HTTP to the same port goes through
        proxied = page.evaluate(OPEN_WEBSOCKET, socket_url)
    with launched() as browser:
        page = browser.new_context().new_page()
        page.goto(page_url)
        direct = page.evaluate(OPEN_WEBSOCKET, socket_url)
    assert direct == ["open", "logo"], "the control: without the proxy the websocket opens"
    assert proxied == ["error"], proxied
    # Chromium asked for a tunnel to the websocket's port, and squid's rules refused it.
    wait_logged(squid, ("GET", page_url), ("CONNECT", tutorial))
    assert logged(squid)[("CONNECT", tutorial)] == ["TCP_DENIED/403"], logged(squid)
