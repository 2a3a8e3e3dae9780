from __future__ import annotations

import re

import pytest
from django.test import Client, override_settings

from snake import logos
from snake.models import Board
from tests.guards.test_refusal import SECURITY
from tests.guards.test_security import parse
from tests.test_logos import picture

pytestmark = pytest.mark.django_db
JSON = {"HTTP_ACCEPT": "application/json"}


def logo(html: str) -> str:
    found = re.search(r'<div id="logo"[^>]*>', html)
    assert found, html
    return found.group(0)


def test_home_shows_board_main_at_the_start(client: Client) -> None:
    response = client.get("/")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'style="left: 500px; top: 150px"' in logo(html)
    assert 'data-x="500" data-y="150" data-seq="0"' in logo(html)
    # Asleep: it holds no stream until htmx, seeing the tab shown, asks for the awake part.
    assert "sse-connect=" not in html
    asleep = '<div id="live" class="live" hx-get="/b/main/" hx-trigger="load[!document.hidden]'
    assert asleep in html
    assert 'sse-swap="position"' in html and 'sse-swap="presence"' in html
    title = '<div class="boardstate" sse-swap="board" hx-swap="innerHTML"><strong id="title" '
    assert title in html and '>main</strong>\n<fieldset id="pad"' in html
    assert "{#" not in html and "{%" not in html  # no template comment leaks onto the page
    presence = '<span id="presence" class="presence" data-viewers="0">0</span></span> here'
    assert presence in html
    assert html.count('class="move" method="post" action="/b/main/move"') == 4
    assert html.count('<button type="submit" form="move-') == 4
    assert 'action="/go/"' in html


def test_htmx_gets_the_live_part_alone_awake_or_asleep(client: Client) -> None:
    awake = client.get("/b/tab/", headers={"HX-Request": "true"})
    html = awake.content.decode()
    assert awake.status_code == 200 and "HX-Request" in awake["Vary"]
    assert html.startswith('<div id="live" class="live" hx-ext="sse" sse-connect="/b/tab/events/"')
    assert html.count("sse-connect=") == 1  # one stream per page, for every live part
    assert 'hx-get="/b/tab/?stream=off" hx-trigger="visibilitychange[document.hidden]' in html
    assert "<html" not in html and "{#" not in html and "{%" not in html
    assert 'data-x="500" data-y="150" data-seq="0"' in logo(html)
    asleep = client.get("/b/tab/?stream=off", headers={"HX-Request": "true"}).content.decode()
    assert asleep.startswith('<div id="live" class="live" hx-get="/b/tab/" ')
    assert "sse-connect=" not in asleep and 'data-seq="0"' in asleep
    assert "HX-Request" in client.get("/b/tab/")["Vary"]  # the page and the part share a URL


def test_the_awake_part_alone_carries_the_polling_fallback(client: Client) -> None:
    awake = client.get("/b/tab/", headers={"HX-Request": "true"}).content.decode()
    fallback = re.findall(r'<span id="fallback" hidden [^>]*><span [^>]*>', awake)
    assert len(fallback) == 1, awake
    assert 'sse-swap="position,presence" hx-target="this" hx-swap="delete"' in fallback[0]
    assert 'hx-get="/b/tab/?poll=1" hx-trigger="load delay:4s, ' in fallback[0]
    assert 'hx-swap="none" hx-select-oob="#logo,#presence"' in fallback[0]
    # A poll is answered like a shown tab: the awake part, with #logo and #presence.
    polled = client.get("/b/tab/?poll=1", headers={"HX-Request": "true"}).content.decode()
    assert 'id="logo"' in polled and 'id="presence"' in polled
    asleep = client.get("/b/tab/?stream=off", headers={"HX-Request": "true"}).content.decode()
    page = client.get("/b/tab/").content.decode()  # loads asleep
    assert "fallback" not in asleep and "poll=1" not in asleep and "poll=1" not in page


def test_page_puts_the_csrf_header_on_body_and_loads_only_vendored_scripts(client: Client) -> None:
    html = client.get("/b/room/").content.decode()
    token = client.cookies["csrftoken"].value
    assert re.search(r"<body hx-headers='\{\"X-CSRFToken\": \"[A-Za-z0-9]+\"\}'>", html)
    assert len(token) > 0
    scripts = re.findall(r"<script[^>]*>", html)
    assert scripts == [
        '<script src="/static/vendor/htmx.min.js" defer>',
        '<script src="/static/vendor/sse.min.js" defer>',
        '<script src="/static/vendor/response-targets.min.js" defer>',
    ]
    assert "</script>" in html and not re.search(r"<script[^>]*>[^<]", html)
    assert "http://" not in html and "https://" not in html


def test_home_and_main_are_the_same_board(dual_client: Client) -> None:
    client = dual_client
    client.post("/b/main/move", {"direction": "d"})
    assert 'data-x="505"' in logo(client.get("/").content.decode())
    assert 'data-x="505"' in logo(client.get("/b/main/").content.decode())


def test_unknown_board_page_stores_nothing(client: Client) -> None:
    assert client.get("/b/never-moved/").status_code == 200
    assert not Board.objects.exists()


@pytest.mark.parametrize(
    "path", ["/b/Main/", "/b/-x/", "/b/a_b/", f"/b/{'a' * 41}/", "/b//", "/b/é/"]
)
def test_bad_slugs_are_404(client: Client, path: str) -> None:
    assert client.get(path).status_code == 404


def test_board_without_its_slash_redirects_like_any_django_page(client: Client) -> None:
    response = client.get("/b/main")
    assert response.status_code == 301
    assert response["Location"] == "/b/main/"


def test_move_answers_json_when_asked(dual_client: Client) -> None:
    response = dual_client.post("/b/j/move", {"direction": "S"}, **JSON)
    assert response.status_code == 200
    assert response.json() == {"slug": "j", "x": 500, "y": 155, "seq": 1}


def test_move_answers_204_to_htmx(dual_client: Client) -> None:
    response = dual_client.post("/b/h/move", {"direction": "left"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 204
    assert Board.objects.get(slug="h").x == 495


def test_move_redirects_a_plain_form_with_303(dual_client: Client) -> None:
    response = dual_client.post("/b/f/move", {"direction": "w"})
    assert response.status_code == 303
    assert response["Location"] == "/b/f/"


def test_json_wins_over_htmx(dual_client: Client) -> None:
    response = dual_client.post("/b/jh/move", {"direction": "w"}, HTTP_HX_REQUEST="true", **JSON)
    assert response.status_code == 200
    assert response.json()["seq"] == 1


# An over-long direction within the body cap (1 KiB); a longer body is the cap's 413, which
# only the ASGI application has (tests/guards/test_bodylimit.py).
@pytest.mark.parametrize("data", [{}, {"direction": "x"}, {"direction": "d" * 500}, {"dir": "d"}])
def test_bad_direction_is_400_naming_the_allowed_values(dual_client: Client, data: dict) -> None:
    client = dual_client
    text = client.post("/b/bad/move", data)
    assert text.status_code == 400
    assert text["Content-Type"].startswith("text/plain")
    assert "W, A, S, D" in text.content.decode()
    as_json = client.post("/b/bad/move", data, **JSON)
    assert as_json.status_code == 400
    assert "W, A, S, D" in as_json.json()["error"]
    assert not Board.objects.exists()


def test_bad_direction_after_moves_leaves_the_state(dual_client: Client) -> None:
    client = dual_client
    client.post("/b/keep/move", {"direction": "d"})
    client.post("/b/keep/move", {"direction": "nope"})
    assert client.get("/b/keep/state").json() == {
        "slug": "keep", "x": 505, "y": 150, "seq": 1, "viewers": 0,
    }  # fmt: skip


def test_move_needs_post(dual_client: Client) -> None:
    assert dual_client.get("/b/main/move").status_code == 405
    assert dual_client.put("/b/main/move").status_code == 405


def test_move_enforces_csrf(make_client: type[Client]) -> None:
    strict = make_client(enforce_csrf_checks=True)
    assert strict.post("/b/csrf/move", {"direction": "d"}).status_code == 403
    strict.get("/b/csrf/")
    token = strict.cookies["csrftoken"].value
    ok = strict.post("/b/csrf/move", {"direction": "d"}, HTTP_X_CSRFTOKEN=token, **JSON)
    assert ok.status_code == 200
    assert Board.objects.get(slug="csrf").seq == 1


@override_settings(SNAKE_MOVES_PER_SECOND=1, SNAKE_MOVES_BURST=1)
def test_every_answer_of_move_and_state_carries_a_pages_security_headers(
    make_client: type[Client],
) -> None:
    client, strict = make_client(), make_client(enforce_csrf_checks=True)
    page = client.get("/b/sec/")

    def move(address: str, direction: str = "d", via: Client = client, **extra: str):
        # An address each, so that only the last pair meets the move limit.
        return via.post("/b/sec/move", {"direction": direction}, REMOTE_ADDR=address, **extra)

    answers = {
        200: move("198.51.100.1", **JSON),
        204: move("198.51.100.2", HTTP_HX_REQUEST="true"),
        303: move("198.51.100.3"),
        400: move("198.51.100.4", "up!"),
        403: move("198.51.100.5", via=strict),
        405: client.get("/b/sec/move"),
        429: [move("198.51.100.6"), move("198.51.100.6")][1],
    }
    state = client.get("/b/sec/state")
    assert state.json()["seq"] == 4  # the 200, 204, 303 and the first of the pair
    for status, answer in [*answers.items(), (200, state)]:
        assert answer.status_code == status
        for name in SECURITY:
            assert parse(answer[name]) == parse(page[name]), (status, name)


def test_state_of_an_unknown_board_is_the_start(dual_client: Client) -> None:
    client = dual_client
    assert client.get("/b/new/state").json() == {
        "slug": "new", "x": 500, "y": 150, "seq": 0, "viewers": 0,
    }  # fmt: skip
    assert client.post("/b/new/state").status_code == 405


def test_go_opens_a_board(client: Client) -> None:
    response = client.get("/go/", {"slug": "  Team Room "})
    assert response.status_code == 303
    assert response["Location"] == "/b/team-room/"


@pytest.mark.parametrize("slug", ["", "-x", "a/b", "<b>", "a" * 41])
def test_go_refuses_a_bad_name_and_escapes_nothing_raw(client: Client, slug: str) -> None:
    response = client.get("/go/", {"slug": slug})
    assert response.status_code == 400
    assert "A board name is 1–40" in response.content.decode()
    assert "<b>" not in response.content.decode()


@pytest.mark.parametrize(("path", "status"), [("/b/cs/move", 400), ("/go/", 400), ("/b/cs/x", 404)])
def test_a_form_body_labelled_other_than_utf_8_is_refused_not_a_500(
    make_client: type[Client], path: str, status: int
) -> None:
    # Django refuses such a body (BadRequest) when the CSRF check reads it; its default error
    # views re-ran that check, raised again, and the client got a 500 (found by test_battery).
    strict = make_client(enforce_csrf_checks=True)
    strict.get("/")
    token = strict.cookies["csrftoken"].value
    form = "application/x-www-form-urlencoded; charset=utf8"
    response = strict.generic("POST", path, "direction=d", form, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == status
    assert not Board.objects.exists()


@pytest.mark.parametrize(
    ("headers", "answer"),
    [
        (JSON, lambda r: r.json()["error"]),
        ({"HTTP_HX_REQUEST": "true"}, lambda r: r.content.decode()),
        ({}, lambda r: r.content.decode()),
    ],
)
def test_a_move_on_a_frozen_board_is_423_and_changes_nothing(
    dual_client: Client, headers: dict, answer
) -> None:
    dual_client.post("/b/ice/move", {"direction": "d"})
    Board.objects.filter(slug="ice").update(frozen=True)
    response = dual_client.post("/b/ice/move", {"direction": "d"}, **headers)
    assert response.status_code == 423
    assert "This board is frozen" in answer(response)
    if "HTTP_HX_REQUEST" in headers:
        assert answer(response).strip().startswith('<p class="note">')
    stored = Board.objects.get(slug="ice")
    assert (stored.x, stored.seq, stored.published_seq <= 1) == (505, 1, True)


def test_a_frozen_board_that_never_moved_stays_at_the_start(dual_client: Client) -> None:
    Board.objects.create(slug="ice-new", x=500, y=150, frozen=True)
    assert dual_client.post("/b/ice-new/move", {"direction": "w"}, **JSON).status_code == 423
    assert dual_client.get("/b/ice-new/state").json()["seq"] == 0


def test_a_frozen_boards_page_disables_the_pad_and_says_frozen(client: Client) -> None:
    Board.objects.create(slug="ice-page", x=500, y=150, frozen=True)
    html = client.get("/b/ice-page/").content.decode()
    assert '<fieldset id="pad" class="pad" aria-labelledby="pad-label" disabled>' in html
    assert 'data-frozen="true"' in html and 'class="frozen-note"' in html


@pytest.mark.parametrize("path", ["/", "/b/main/", "/b/main/state", "/b/main/events/"])
def test_the_boards_requests_carry_no_session_cookie_and_no_vary_cookie(
    client: Client, path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert "sessionid" not in response.cookies
    # The page's Vary: Cookie is its CSRF token's (each visitor's own), never the session's.
    vary = response.get("Vary", "")
    assert ("Cookie" in vary) == ("csrftoken" in response.cookies)
    moved = client.post("/b/main/move", {"direction": "d"}, HTTP_HX_REQUEST="true")
    assert moved.status_code == 204
    assert "sessionid" not in moved.cookies and "Cookie" not in moved.get("Vary", "")


def test_the_admin_has_its_session_and_its_login(client: Client) -> None:
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert "Cookie" in client.get("/admin/login/")["Vary"]


def test_an_uploaded_logo_is_served_at_its_hash_for_good(client: Client) -> None:
    stored = logos.store(logos.encode(picture("WEBP")))
    response = client.get(f"/logos/{stored.sha256}.webp")
    assert response.status_code == 200 and response["Content-Type"] == "image/webp"
    assert response.content == bytes(stored.data)
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert client.get(f"/logos/{stored.sha256}.png").status_code == 404
    assert client.get(f"/logos/{'0' * 64}.webp", HTTP_ACCEPT="application/json").json() == {
        "error": "No such logo."
    }
    assert client.get("/logos/x.svg").status_code == 404


# Languages: English, or Spanish for a browser that asks for it (Accept-Language).

ES = {"HTTP_ACCEPT_LANGUAGE": "es-ES,es;q=0.9,en;q=0.5"}
# Each of the page's words and what Spanish says instead.
WORDS = {
    "board main": "tablero main",
    "</span> here</span>": "</span> aquí</span>",
    ">Go to board<": ">Ir al tablero<",
    ">Go</button>": ">Ir</button>",
    ">snake logo at<": ">logo de snake en<",
    "Frozen: a moderator": "Congelado: un moderador",
    ">Move the logo<": ">Mueve el logo<",
    "or the arrow keys.": "o las flechas del teclado.",
    "Everyone on this board sees every move.": "Todos en este tablero ven cada movimiento.",
}


@pytest.mark.parametrize(
    ("accept", "language"),
    [
        ("", "en"),
        ("en-US,en;q=0.9", "en"),
        ("fr-FR,fr;q=0.9", "en"),  # neither: the default
        ("es", "es"),
        ("es-MX,es;q=0.9", "es"),
        ("fr;q=1, es;q=0.8, en;q=0.5", "es"),
    ],
)
def test_the_page_speaks_the_language_the_browser_asks_for(
    dual_client: Client, accept: str, language: str
) -> None:
    headers = {"HTTP_ACCEPT_LANGUAGE": accept} if accept else {}
    response = dual_client.get("/b/main/", **headers)
    html = response.content.decode()
    assert response.status_code == 200 and f'<html lang="{language}">' in html
    assert response["Content-Language"] == language
    english, spanish = list(WORDS), list(WORDS.values())
    said, unsaid = (spanish, english) if language == "es" else (english, spanish)
    assert [words for words in said if words not in html] == []
    assert [words for words in unsaid if words in html] == []


@pytest.mark.parametrize("htmx", [{}, {"HTTP_HX_REQUEST": "true"}])
@pytest.mark.parametrize("path", ["/b/main/", "/b/main/state"])
def test_a_cache_keeps_each_language_apart_and_spanish_needs_no_session(
    dual_client: Client, path: str, htmx: dict
) -> None:
    response = dual_client.get(path, **htmx, **ES)
    assert response.status_code == 200 and "Accept-Language" in response["Vary"]
    assert "sessionid" not in response.cookies


def test_the_streamed_logo_is_named_by_the_pages_words(client: Client) -> None:
    # The logo carries numbers only (every language shares its event): it names itself with
    # the page's #logo-name, then its own label, the coordinates.
    html = client.get("/b/main/", **ES).content.decode()
    assert '<span id="logo-name" hidden>logo de snake en</span>' in html
    assert 'aria-labelledby="logo-name logo" aria-label="500, 150"' in logo(html)


@pytest.mark.parametrize(
    ("headers", "answer"),
    [
        (JSON, lambda r: r.json()["error"]),
        ({"HTTP_HX_REQUEST": "true"}, lambda r: r.content.decode()),
        ({}, lambda r: r.content.decode()),
    ],
)
def test_the_moves_refusals_speak_spanish(dual_client: Client, headers: dict, answer) -> None:
    bad = dual_client.post("/b/es-move/move", {"direction": "nope"}, **headers, **ES)
    assert bad.status_code == 400
    allowed = "W, A, S, D (en mayúscula o minúscula), up, down, left o right"
    assert f"la dirección debe ser uno de estos valores: {allowed}" in answer(bad)
    Board.objects.create(slug="es-ice", x=500, y=150, frozen=True)
    frozen = dual_client.post("/b/es-ice/move", {"direction": "d"}, **headers, **ES)
    assert frozen.status_code == 423
    assert "Este tablero está congelado" in answer(frozen)


@override_settings(SNAKE_MOVES_PER_SECOND=1, SNAKE_MOVES_BURST=1)
def test_slow_down_speaks_spanish_with_a_decimal_comma(dual_client: Client) -> None:
    dual_client.post("/b/es-slow/move", {"direction": "d"}, **JSON, **ES)
    slow = dual_client.post("/b/es-slow/move", {"direction": "d"}, **JSON, **ES)
    assert slow.status_code == 429
    error = slow.json()["error"]
    assert error.startswith("Más despacio: los movimientos están limitados a 1/s por dirección IP")
    assert re.search(r"Vuelve a intentarlo dentro de \d,\d\d s\.$", error), error
    assert isinstance(slow.json()["retry_after"], float)  # the number itself stays a number


def test_a_bad_board_name_is_refused_in_spanish(client: Client) -> None:
    response = client.get("/go/", {"slug": "-x"}, **ES)
    html = response.content.decode()
    assert response.status_code == 400 and '<html lang="es">' in html
    assert "El nombre de un tablero tiene de 1 a 40 letras" in html


def test_the_loopback_endpoint_refuses_in_spanish(client: Client) -> None:
    refused = client.post("/local/b/es/publish", **JSON, **ES)
    assert refused.status_code == 403
    assert refused.json()["error"].startswith("Solo manage.py board, desde la máquina")
