"""Every refusal, one way: the helpers on their own, then each kind against live servers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator

import httpx
import pytest
from django.http import HttpResponse
from django.test import Client, RequestFactory, override_settings
from django.utils import translation

from snake.guards import refusal
from snake.guards.security import security_headers
from tests.guards.test_security import parse
from tests.live import Player, Server

SECURITY = (
    "X-Content-Type-Options",
    "Referrer-Policy",
    "Cross-Origin-Opener-Policy",
    "X-Frame-Options",
    "Content-Security-Policy",
)
JSON = {"Accept": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


# The helpers, outside any middleware: what they send is all a client gets.


def test_response_answers_json_text_or_an_htmx_note_and_is_secured() -> None:
    factory = RequestFactory()
    as_json = refusal.response(
        factory.post("/", HTTP_ACCEPT="application/json", HTTP_HX_REQUEST="true"),
        429, "wait", {"Retry-After": "2"}, retry_after=1.5,
    )  # fmt: skip
    assert json.loads(as_json.content) == {"error": "wait", "retry_after": 1.5}  # JSON wins
    assert as_json.status_code == 429 and as_json["Retry-After"] == "2"
    note = refusal.response(factory.post("/", HTTP_HX_REQUEST="true"), 400, "<b>no</b>")
    assert note.content.decode().strip() == '<p class="note">&lt;b&gt;no&lt;/b&gt;</p>'
    text = refusal.response(factory.post("/"), 400, "no")
    assert text.content == b"no" and text["Content-Type"] == refusal.TEXT
    for answer in (as_json, note, text):
        assert {(k.encode(), v.encode()) for k, v in answer.items()} >= set(security_headers())


@override_settings(SNAKE_MOVES_PER_SECOND=1, SNAKE_MOVES_BURST=1)
def test_the_moves_refusals_reach_htmx_as_the_pages_note(dual_client: Client) -> None:
    htmx = {"HTTP_HX_REQUEST": "true"}
    bad = dual_client.post("/b/note/move", {"direction": "nope"}, **htmx)
    slow = dual_client.post("/b/note/move", {"direction": "d"}, **htmx)
    for answer, status, note in ((bad, 400, "direction must be"), (slow, 429, "Slow down")):
        assert answer.status_code == status
        assert answer.content.decode().strip().startswith(f'<p class="note">{note}')
        assert answer["Content-Type"].startswith("text/html")


def test_secured_keeps_a_header_the_answer_has() -> None:
    answer = HttpResponse()
    answer["X-Frame-Options"] = "SAMEORIGIN"
    assert refusal.secured(answer)["X-Frame-Options"] == "SAMEORIGIN"
    assert answer["X-Content-Type-Options"] == "nosniff"


def sent_asgi(accept: str, more_body: bool = False) -> list[dict]:
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"headers": [(b"accept", accept.encode())]}
    coro = refusal.send_asgi(scope, send, 429, "no", {"Retry-After": "3"}, more_body=more_body)
    asyncio.run(coro)
    return sent


def test_send_asgi_answers_json_or_text_with_the_security_headers() -> None:
    start, body = sent_asgi("text/html, application/json")
    assert start["status"] == 429 and json.loads(body["body"]) == {"error": "no"}
    assert set(security_headers()) <= set(start["headers"])
    assert (b"retry-after", b"3") in start["headers"]
    assert body["more_body"] is False
    start, body = sent_asgi("*/*", more_body=True)
    assert body["body"] == b"no\n" and body["more_body"] is True
    assert (b"content-type", refusal.TEXT.encode()) in start["headers"]


# Live: each kind of refusal, as a client gets it from daphne and from uvicorn.

Send = Callable[[httpx.Client, str, dict[str, str]], httpx.Response]


def check(answer: httpx.Response, status: int, page: httpx.Response, asked_json: bool) -> None:
    """The refusal's status, a page's security headers, and JSON when JSON was asked for."""
    assert answer.status_code == status, answer.text
    for name in SECURITY:
        assert name in answer.headers, name
        assert parse(answer.headers[name]) == parse(page.headers[name]), name
    kind = answer.headers["Content-Type"]
    if asked_json:
        assert kind == "application/json" and answer.json()["error"], answer.text
    else:
        # Django's own page for the errors it renders (404, CSRF), else text.
        assert kind.startswith(("text/plain", "text/html")), kind


def token(client: httpx.Client) -> dict[str, str]:
    return {"X-CSRFToken": client.cookies["csrftoken"]}


REFUSALS: dict[str, tuple[int, Send]] = {
    "bad direction": (400, lambda c, s, h: c.post(
        f"/b/{s}/move", data={"direction": "up!"}, headers={**token(c), **h})),
    "bad charset": (400, lambda c, s, h: c.post(
        f"/b/{s}/move", content="direction=d",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=rot13", **h})),
    "CSRF": (403, lambda c, s, h: c.post(
        f"/b/{s}/move", data={"direction": "d"}, headers={**h, "X-CSRFToken": "wrong"})),
    "unknown URL": (404, lambda c, s, h: c.get("/nowhere/", headers=h)),
    "GET on move": (405, lambda c, s, h: c.get(f"/b/{s}/move", headers=h)),
    "POST on stream": (405, lambda c, s, h: c.post(f"/b/{s}/events/", headers=h)),
    "body cap": (413, lambda c, s, h: c.post(
        f"/b/{s}/move", content=b"direction=" + b"d" * 4000, headers={**FORM, **h})),
    "page host": (400, lambda c, s, h: c.get(f"/b/{s}/", headers={**h, "Host": "evil.example"})),
    "stream host": (400, lambda c, s, h: c.get(
        f"/b/{s}/events/", headers={**h, "Host": "evil.example"})),
}  # fmt: skip


@pytest.mark.parametrize("asked_json", [False, True], ids=["text", "json"])
@pytest.mark.parametrize("kind", REFUSALS)
def test_live_each_refusal_carries_a_pages_headers(
    server: Server, player: Player, slug: str, kind: str, asked_json: bool
) -> None:
    status, send = REFUSALS[kind]
    page = player.http.get(f"/b/{slug}/")
    answer = send(player.http, slug, JSON if asked_json else {})
    # The move's 405 is Django's own require_POST answer: Allow and the page's headers (the
    # middleware adds them), an empty body whatever was asked.
    check(answer, status, page, asked_json and kind != "GET on move")
    if kind == "GET on move":
        assert answer.headers["Allow"] == "POST"
    elif kind == "POST on stream":
        assert answer.headers["Allow"] == "GET"
    elif kind == "body cap":
        assert answer.headers["Connection"] == "close"


@pytest.fixture(scope="module", params=["daphne", "uvicorn"])
def limited(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[Server]:
    env = {
        "SNAKE_MOVES_PER_SECOND": "1",
        "SNAKE_MOVES_BURST": "1",
        "SNAKE_MAX_STREAMS_PER_IP": "1",
        "SNAKE_TRUSTED_PROXIES": "127.0.0.1",  # each test is its own client (X-Forwarded-For)
    }
    server = Server(tmp_path_factory.mktemp("limited"), env=env, server=request.param)
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("asked_json", [False, True], ids=["text", "json"])
def test_live_the_two_429s_carry_a_pages_headers(
    limited: Server, slug: str, asked_json: bool
) -> None:
    client = {"X-Forwarded-For": f"198.51.100.{20 + asked_json}"}
    headers = {**client, **(JSON if asked_json else {"Accept": "*/*"})}
    with Player(limited.url) as player:
        page = player.http.get(f"/b/{slug}/")
        moves = [player.move(slug, "d", **headers) for _ in range(2)]
        assert moves[0].status_code in (200, 303)  # moved: JSON, or back to the page
        check(moves[1], 429, page, asked_json)
        assert moves[1].headers["Retry-After"] == "1"
        with player.http.stream("GET", f"/b/{slug}/events/", headers=client) as first:
            assert first.status_code == 200  # its headers came: its slot is taken
            second = player.http.get(f"/b/{slug}/events/", headers=headers)
        check(second, 429, page, asked_json)
        assert "Retry-After" in second.headers
        if asked_json:
            assert "retry_after" in moves[1].json()


@pytest.mark.parametrize(
    ("accept", "language"),
    [
        ("", "en"),
        ("es-ES,es;q=0.9", "es"),
        ("fr, es;q=0.5", "es"),
        ("fr", "en"),
        ("de, en;q=0.9, es;q=0.8", "en"),
    ],
)
def test_speaking_chooses_the_language_as_the_locale_middleware_does(
    accept: str, language: str
) -> None:
    scope = {"headers": [(b"accept-language", accept.encode())] if accept else []}
    request = RequestFactory().get("/", HTTP_ACCEPT_LANGUAGE=accept)
    assert translation.get_language_from_request(request) == language
    with refusal.speaking(scope):
        assert translation.get_language() == language
    assert translation.get_language() == "en"  # and only while it speaks
