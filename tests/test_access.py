"""Accessibility in a real Chromium: axe-core finds nothing on the board page, and the pad is
big enough for a thumb on a phone (#12)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.browser import needs_chromium, streaming
from tests.live import ROOT, Server

pytestmark = [pytest.mark.browser, needs_chromium]
sync_api = pytest.importorskip("playwright.sync_api")

# Test-only: tests/vendor/ is outside static/, so the site never serves it (tests/test_vendored.py).
AXE = ROOT / "tests" / "vendor" / "axe.min.js"
# Each violation as the assertion shows it: which rule, how bad, and where.
FOUND = """async () => (await axe.run()).violations.map(v => ({
  id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map(n => n.target.join(" ")),
}))"""
THUMB = 44  # CSS px: WCAG 2.5.5's target size, Apple's and Google's minimum too
PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True}


def open_board(browser, url: str, **context_options):
    page = browser.new_context(**context_options).new_page()
    page.goto(url)
    streaming(page)  # the awake page, the one a viewer uses
    return page


def in_language(lang: str, scheme: str) -> dict[str, object]:
    # The page's CSP allows no inline script, which is what add_script_tag inserts: only this
    # test's context bypasses it, to inject axe.
    return {
        "locale": lang,
        "extra_http_headers": {"Accept-Language": lang},
        "color_scheme": scheme,
        "bypass_csp": True,
    }


def violations(page) -> list[dict[str, object]]:
    page.add_script_tag(path=str(AXE))
    return page.evaluate(FOUND)


def described(found: list[dict[str, object]]) -> str:
    return "\n".join(f"{v['id']} ({v['impact']}): {v['help']} at {v['targets']}" for v in found)


def freeze(server: Server, slug: str) -> None:
    """`manage.py board freeze` on the server's machine, as a moderator would."""
    done = subprocess.run(
        [sys.executable, "manage.py", "board", "freeze", slug],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={
            **os.environ,
            "SNAKE_VAR_DIR": server.env["SNAKE_VAR_DIR"],
            "DATABASE_URL": server.env["DATABASE_URL"],
            "SNAKE_SERVER_URL": server.url,
        },
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


# Spanish is on its way (#12): every language's page must pass, whatever its words.
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("frozen", [False, True], ids=["open", "frozen"])
def test_axe_finds_nothing_on_the_board_page(browser, server, slug, frozen, lang, scheme) -> None:
    if frozen:
        freeze(server, slug)
    page = open_board(browser, f"{server.url}/b/{slug}/", **in_language(lang, scheme))
    state = sync_api.expect(page.locator("#title"))
    state.to_have_attribute("data-frozen", "true" if frozen else "false")
    # The note shows only while frozen: audited when it is there.
    note = sync_api.expect(page.locator(".frozen-note"))
    note.to_be_visible() if frozen else note.to_be_hidden()
    found = violations(page)
    assert found == [], described(found)


@pytest.mark.parametrize("lang", ["en", "es"])
def test_axe_finds_nothing_on_a_page_that_says_what_went_wrong(browser, server, lang) -> None:
    # A bad board name answers 400 with the home board and a note. Awake, the page swaps its live
    # part, note and all, for the board's own: kept asleep (no htmx), the page stays as served.
    context = browser.new_context(**in_language(lang, "light"))
    context.route("**/htmx.min.js", lambda route: route.abort())
    page = context.new_page()
    page.goto(f"{server.url}/go/?slug=-bad-")
    sync_api.expect(page.locator(".error")).to_have_count(1)
    found = violations(page)
    assert found == [], described(found)


def boxes(page) -> dict[str, dict[str, float]]:
    # One evaluate measures all four at once: the stream's `board` event may swap the pad anew
    # between one locator's lookup and its measuring.
    return page.evaluate("""() => Object.fromEntries([..."wasd"].map(k => {
      const r = document.querySelector(`.key-${k}`).getBoundingClientRect();
      return [k, {x: r.x, y: r.y, width: r.width, height: r.height}];
    }))""")


def test_the_pad_is_an_inverted_t_of_thumb_sized_keys_on_a_phone(browser, server, slug) -> None:
    page = open_board(browser, f"{server.url}/b/{slug}/", **PHONE)
    keys = boxes(page)
    for key, box in keys.items():
        assert box["width"] >= THUMB and box["height"] >= THUMB, f"{key}: {box}"
    w, a, s, d = (keys[k] for k in "wasd")
    assert w["y"] + w["height"] <= s["y"], "W is not above S"
    assert abs(w["x"] - s["x"]) < 1, "W is not over S"
    assert a["x"] + a["width"] <= s["x"], "A is not left of S"
    assert d["x"] >= s["x"] + s["width"], "D is not right of S"
    assert abs(a["y"] - s["y"]) < 1 and abs(d["y"] - s["y"]) < 1, "A, S, D are not one row"
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways: {width} px wide"


def test_tapping_a_key_on_a_phone_moves_the_logo(browser, server, slug) -> None:
    page = open_board(browser, f"{server.url}/b/{slug}/", **PHONE)
    logo = sync_api.expect(page.locator("#logo"))
    logo.to_have_attribute("data-x", "500")
    page.locator(".key-d").tap()
    logo.to_have_attribute("data-x", "505")
    logo.to_have_attribute("data-seq", "1")


# With JavaScript off a key's button submits its form and the board loads again: covered by
# tests/test_browser.py's test_buttons_work_with_javascript_off.
