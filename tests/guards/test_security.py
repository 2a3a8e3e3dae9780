"""The Content-Security-Policy and security headers: one policy for pages and the event stream."""

from __future__ import annotations

import httpx
import pytest
from django.test import Client
from playwright.sync_api import expect

from snake.guards.security import security_headers, stream_headers
from tests.browser import needs_chromium, streaming
from tests.sse import SSEClient

HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy")
POLICY = {
    "default-src": "'self'",
    "script-src": "'self' 'unsafe-eval'",
    "style-src": "'self' 'unsafe-inline'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def parse(policy: str) -> dict[str, str]:
    # django-csp joins directives in set order, which differs between processes.
    pairs = (part.strip().partition(" ") for part in policy.split(";"))
    return {name: value for name, _, value in pairs}


def stream_header(name: str) -> str:
    return dict(stream_headers())[name.encode()].decode()


@pytest.mark.django_db
def test_pages_and_the_stream_share_one_policy(client: Client) -> None:
    page = client.get("/b/room/")
    assert parse(page["Content-Security-Policy"]) == POLICY
    for name in HEADERS:
        assert parse(stream_header(name)) == parse(page[name]), name
    assert stream_header("X-Content-Type-Options") == "nosniff"


@pytest.mark.django_db
def test_a_changed_policy_reaches_pages_and_the_stream_alike(client: Client, settings) -> None:
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'none'"]}}
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {"DIRECTIVES": {"img-src": ["'self'"]}}
    page = client.get("/")
    assert page["Content-Security-Policy"] == "default-src 'none'"
    assert stream_header("Content-Security-Policy") == "default-src 'none'"
    report_only = "Content-Security-Policy-Report-Only"
    assert parse(stream_header(report_only)) == parse(page[report_only])


def test_the_security_headers_alone_suit_any_answer_of_the_consumer() -> None:
    headers = dict(security_headers())
    assert parse(headers[b"Content-Security-Policy"].decode()) == POLICY
    assert headers[b"X-Content-Type-Options"] == b"nosniff"
    assert b"Content-Type" not in headers  # a refusal sets its own
    assert set(security_headers()) <= set(stream_headers())


@pytest.mark.django_db
def test_error_pages_and_static_files_carry_the_policy_too(client: Client) -> None:
    for response in (client.get("/no-such-page"), client.get("/static/snake/board.css")):
        assert parse(response["Content-Security-Policy"]) == POLICY
        assert response["X-Content-Type-Options"] == "nosniff"
        response.close()  # whitenoise streams the file: close it


def test_a_real_server_sends_the_headers_with_pages_and_the_stream(server, slug) -> None:
    page = httpx.get(f"{server.url}/b/{slug}/")
    viewer = SSEClient(server.url, f"/b/{slug}/events/")
    try:
        assert viewer.status == 200
        assert parse(viewer.headers["Content-Security-Policy"]) == POLICY
        for name in HEADERS:
            assert parse(viewer.headers[name]) == parse(page.headers[name]), name
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert page.headers["Referrer-Policy"] == "same-origin"
    finally:
        viewer.close()


# A real Chromium shows the policy's exceptions are sufficient (a move works with no violation
# and no console error) and needed (without each, the browser reports a violation).
# Playwright injects this outside the page's policy, before any of the page's scripts run.
RECORD_VIOLATIONS = """
window.violations = [];
document.addEventListener("securitypolicyviolation",
    (e) => window.violations.push(e.violatedDirective + " " + e.blockedURI));
"""


def open_watched(browser, url: str, without: str = "") -> tuple:
    """Open the board, recording CSP violations and console errors; `without` drops a source."""
    page = browser.new_context().new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.add_init_script(RECORD_VIOLATIONS)
    if without:

        def weaken(route) -> None:
            response = route.fetch()
            headers = dict(response.headers)
            policy = headers["content-security-policy"]
            headers["content-security-policy"] = policy.replace(f" {without}", "")
            route.fulfill(response=response, headers=headers)

        page.route(url, weaken)
    page.goto(url)
    streaming(page)
    return page, errors


def logo_at(page, x: int, y: int, seq: int) -> None:
    logo = expect(page.locator("#logo"))
    logo.to_have_attribute("data-seq", str(seq))
    logo.to_have_attribute("style", f"left: {x}px; top: {y}px")


def board_width(page) -> str:
    return page.eval_on_selector(".frame", "e => getComputedStyle(e).getPropertyValue('--board-w')")


@pytest.mark.browser
@needs_chromium
def test_a_move_in_chromium_breaks_no_rule_of_the_policy(browser, server, slug) -> None:
    page, errors = open_watched(browser, f"{server.url}/b/{slug}/")
    logo_at(page, 500, 150, 0)
    page.keyboard.press("d")
    logo_at(page, 505, 150, 1)
    assert board_width(page) == "1200px"
    assert page.evaluate("window.violations") == []
    assert errors == []


@pytest.mark.browser
@needs_chromium
def test_without_unsafe_eval_the_key_filter_breaks(browser, server, slug) -> None:
    page, errors = open_watched(browser, f"{server.url}/b/{slug}/", without="'unsafe-eval'")
    logo_at(page, 500, 150, 0)
    page.keyboard.press("d")
    # Every form's filter failed to compile, so one key press sends all four moves.
    logo_at(page, 500, 150, 4)
    # htmx compiles each form's filter once per processing of the form, and the forms inside
    # the page's sse-connect wrapper are processed twice at load: 8 here, all of them eval.
    violations = page.evaluate("window.violations")
    assert set(violations) == {"script-src eval"} and len(violations) >= 4
    assert all("unsafe-eval" in error for error in errors)


@pytest.mark.browser
@needs_chromium
def test_without_unsafe_inline_the_board_loses_its_layout(browser, server, slug) -> None:
    page, _ = open_watched(browser, f"{server.url}/b/{slug}/", without="'unsafe-inline'")
    page.wait_for_function("window.violations.includes('style-src-elem inline')")
    violations = page.evaluate("window.violations")
    assert "style-src-attr inline" in violations  # the board's and the logo's style attributes
    assert "style-src-elem inline" in violations  # htmx's indicator <style>
    # The board's size never arrives (htmx re-sets only the logo's style, which CSP allows).
    assert board_width(page) == ""
