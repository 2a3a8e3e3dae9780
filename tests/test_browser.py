"""Real Chromium (Debian's /usr/bin/chromium) driven by Playwright against a real daphne."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.browser import needs_chromium, streaming
from tests.live import Player

pytestmark = [pytest.mark.browser, needs_chromium]
sync_api = pytest.importorskip("playwright.sync_api")


def open_board(browser, url: str, **context_options):
    """Open the board in a new context; with JavaScript, once the page holds its stream (the
    page loads asleep, then swaps its live part for the awake one)."""
    # English unless told: the page's words follow the browser's language (Accept-Language).
    context_options.setdefault("locale", "en-US")
    page = browser.new_context(**context_options).new_page()
    page.goto(url)
    if context_options.get("java_script_enabled", True):
        streaming(page, True)
    return page


def is_move(response) -> bool:
    return response.request.method == "POST" and response.url.endswith("/move")


def by_htmx(page, act: Callable[[], object]) -> None:
    """Do `act` and check that it posted one move by htmx, answered 204 (no page load)."""
    # The URL alone cannot tell: a plain form post's 303 comes back to the same URL.
    with page.expect_response(is_move) as answer:
        act()
    response = answer.value
    assert response.request.headers.get("hx-request") == "true", response.request.headers
    assert response.status == 204, f"the move answered {response.status}: not htmx's 204"


def logo_at(page, x: int, y: int, seq: int) -> None:
    logo = sync_api.expect(page.locator("#logo"))
    logo.to_have_attribute("data-seq", str(seq))
    logo.to_have_attribute("data-x", str(x))
    logo.to_have_attribute("data-y", str(y))
    # htmx keeps the old style for one settle tick so the CSS transition animates the move.
    logo.to_have_attribute("style", f"left: {x}px; top: {y}px")


def test_a_key_in_one_browser_moves_the_logo_in_another(browser, server, slug) -> None:
    url = f"{server.url}/b/{slug}/"
    one, two = open_board(browser, url), open_board(browser, url)
    logo_at(two, 500, 150, 0)
    by_htmx(one, lambda: one.keyboard.press("d"))
    logo_at(two, 505, 150, 1)
    logo_at(one, 505, 150, 1)
    by_htmx(one, lambda: one.keyboard.press("ArrowUp"))
    logo_at(two, 505, 145, 2)
    by_htmx(two, lambda: two.keyboard.press("S"))  # upper case too, and from the other browser
    logo_at(one, 505, 150, 3)
    # The move is animated: the logo's box slides through the positions in between.
    assert "left" in two.eval_on_selector("#logo", "e => getComputedStyle(e).transitionProperty")


def test_every_page_shows_how_many_watch_its_board(browser, server, slug) -> None:
    url = f"{server.url}/b/{slug}/"
    one = open_board(browser, url)
    watching = sync_api.expect(one.locator("#presence"))
    watching.to_have_attribute("data-viewers", "1")  # the page's own stream counts
    two = open_board(browser, url)
    for page in (one, two):
        sync_api.expect(page.locator("#presence")).to_have_attribute("data-viewers", "2")
        sync_api.expect(page.locator(".watching")).to_have_text("2 here")
    two.context.close()
    watching.to_have_attribute("data-viewers", "1")
    # The one stream carries the logo as well: the presence swap left it listening.
    by_htmx(one, lambda: one.keyboard.press("d"))
    logo_at(one, 505, 150, 1)


# Headless Chromium calls every page visible: this makes `document.visibilityState` what the
# test says (`setVisibility('hidden')` also fires visibilitychange, as a browser does), and a page
# whose init scripts set `startHidden` is one opened in the background.
FAKE_VISIBILITY = """(() => {
  let state = null;
  const now = () => state ?? (window.startHidden ? "hidden" : "visible");
  Object.defineProperty(Document.prototype, "visibilityState", {get: now, configurable: true});
  Object.defineProperty(Document.prototype, "hidden", {
    get: () => now() === "hidden", configurable: true,
  });
  window.setVisibility = (next) => {
    state = next;
    document.dispatchEvent(new Event("visibilitychange"));
  };
})();"""


def watched_by(server, slug: str, viewers: int, timeout: float = 15) -> None:
    """Wait until the server counts `viewers` open streams of the board."""
    deadline = time.monotonic() + timeout
    with Player(server.url) as player:
        while (now := player.state(slug)["viewers"]) != viewers:
            assert time.monotonic() < deadline, f"{now} streams open, not {viewers}"
            time.sleep(0.05)


def test_twelve_tabs_of_one_browser_all_load_as_hidden_tabs_let_their_streams_go(
    browser, server, slug
) -> None:
    # One profile has 6 connections per host over HTTP/1.1: were each tab's stream kept, the
    # 7th tab would never load.
    context = browser.new_context()
    context.add_init_script(FAKE_VISIBILITY)
    tabs: list = []
    for _ in range(12):
        if tabs:
            tabs[-1].evaluate("setVisibility('hidden')")
            streaming(tabs[-1], False)
        tab = context.new_page()
        tab.goto(f"{server.url}/b/{slug}/")
        streaming(tab, True)
        logo_at(tab, 500, 150, 0)
        watched_by(server, slug, 1)  # this tab's stream only: every hidden one let its go
        tabs.append(tab)
    first, last = tabs[0], tabs[-1]
    first.evaluate("setVisibility('visible')")
    streaming(first, True)
    watched_by(server, slug, 2)
    by_htmx(last, lambda: last.keyboard.press("d"))
    logo_at(first, 505, 150, 1)


def test_a_tab_opened_hidden_opens_no_stream_until_shown(browser, server, slug) -> None:
    context = browser.new_context()
    context.add_init_script(FAKE_VISIBILITY)
    url = f"{server.url}/b/{slug}/"
    watcher = context.new_page()
    watcher.goto(url)
    streaming(watcher, True)
    background = context.new_page()
    background.add_init_script("window.startHidden = true")
    background.goto(url)
    logo_at(background, 500, 150, 0)  # the page itself loads; only its stream waits
    by_htmx(watcher, lambda: watcher.keyboard.press("s"))
    watched_by(server, slug, 1)
    streaming(background, False)
    background.evaluate("setVisibility('visible')")
    streaming(background, True)
    logo_at(background, 500, 155, 1)  # shown: the current state at once
    watched_by(server, slug, 2)


def test_typing_in_a_field_or_with_modifiers_moves_nothing(browser, server, slug) -> None:
    url = f"{server.url}/b/{slug}/"
    page, watcher = open_board(browser, url), open_board(browser, url)
    page.locator("#go-slug").type("wasd")
    page.keyboard.press("ArrowLeft")  # still in the field
    page.locator("#go-slug").blur()
    for chord in ("Control+d", "Alt+d", "Meta+d"):
        page.keyboard.press(chord)
    by_htmx(page, lambda: page.keyboard.press("s"))  # the only move that counts
    logo_at(watcher, 500, 155, 1)
    logo_at(page, 500, 155, 1)


def test_a_spanish_browser_reads_the_page_and_the_streamed_logo_in_spanish(
    browser, server, slug
) -> None:
    url = f"{server.url}/b/{slug}/"
    spanish, english = open_board(browser, url, locale="es-ES"), open_board(browser, url)
    assert spanish.locator("html").get_attribute("lang") == "es"
    sync_api.expect(spanish.locator(".watching")).to_have_text("2 aquí")
    sync_api.expect(spanish.locator("#pad")).to_have_accessible_name("Mueve el logo")
    # The English page's move reaches both as one fragment without words: each page names it.
    by_htmx(english, lambda: english.keyboard.press("d"))
    logo_at(spanish, 505, 150, 1)
    name = spanish.get_by_role("img", name="logo de snake en 505, 150", exact=True)
    sync_api.expect(name).to_have_count(1)
    name = english.get_by_role("img", name="snake logo at 505, 150", exact=True)
    sync_api.expect(name).to_have_count(1)


def test_buttons_work_with_javascript_off(browser, server, slug) -> None:
    url = f"{server.url}/b/{slug}/"
    page = open_board(browser, url, java_script_enabled=False)
    # A plain form post: answered 303 back to the board, which loads again.
    with page.expect_response(is_move) as answer, page.expect_event("load"):
        page.get_by_role("button", name="→ D").click()
    assert answer.value.status == 303
    assert "hx-request" not in answer.value.request.headers
    assert page.url == url
    logo_at(page, 505, 150, 1)
    page.get_by_role("button", name="↑ W").click()
    logo_at(page, 505, 145, 2)


def test_buttons_with_javascript_on_reach_other_viewers(browser, server, slug) -> None:
    url = f"{server.url}/b/{slug}/"
    page, watcher = open_board(browser, url), open_board(browser, url)
    by_htmx(page, page.get_by_role("button", name="← A").click)
    logo_at(watcher, 495, 150, 1)
    logo_at(page, 495, 150, 1)


def test_go_to_board_form_opens_a_room(browser, server, slug) -> None:
    page = open_board(browser, f"{server.url}/")
    page.locator("#go-slug").fill(slug)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server.url}/b/{slug}/")
    assert page.locator("#title").inner_text() == slug


@pytest.mark.parametrize("size", [(1280, 800), (800, 600), (390, 844)])
def test_the_board_fits_the_window(browser, server, slug, size) -> None:
    width, height = size
    page = open_board(
        browser, f"{server.url}/b/{slug}/", viewport={"width": width, "height": height}
    )
    scroll = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
    )
    assert scroll[0] <= width and scroll[1] <= height, f"page scrolls: {scroll} in {size}"
    box = page.locator("#board").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= width
    # Scaled as a whole: the logo keeps its board-pixel position.
    logo_at(page, 500, 150, 0)


def test_a_page_whose_stream_delivers_never_polls(browser, server, slug) -> None:
    # The fallback polls only until the stream's first event (its opening) deletes it.
    page = browser.new_context().new_page()
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    page.goto(f"{server.url}/b/{slug}/")
    streaming(page)
    sync_api.expect(page.locator("#fallback")).to_have_count(0)
    page.wait_for_timeout(8_000)  # twice the fallback's 4 s before its first poll
    assert [url for url in urls if "poll=1" in url] == [], urls
    by_htmx(page, lambda: page.keyboard.press("d"))
    logo_at(page, 505, 150, 1)
