from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBase
from django.test import Client, RequestFactory
from django.utils import translation

from snake import errors

JSON = {"HTTP_ACCEPT": "application/json"}


def test_refusals_answer_json_when_json_was_asked_for(make_client: type[Client]) -> None:
    strict = make_client(enforce_csrf_checks=True)
    no_token = strict.post("/b/e/move", {"direction": "d"}, **JSON)
    assert no_token.status_code == 403
    assert "X-CSRFToken" in no_token.json()["error"]
    strict.get("/b/e/")  # the cookie, without which every token is refused the same way
    bad_token = strict.post("/b/e/move", {"direction": "d"}, HTTP_X_CSRFTOKEN="x" * 32, **JSON)
    assert bad_token.status_code == 403
    assert bad_token.json()["error"].startswith(
        "CSRF check failed: CSRF token from the 'X-Csrftoken' HTTP header incorrect. "
    )
    assert strict.get("/nowhere/", **JSON).json() == {"error": "not found"}
    assert strict.get("/b/Bad_Slug/state", **JSON).status_code == 404
    # A body Django refuses to read (BadRequest) reaches the 400 handler.
    form = "application/x-www-form-urlencoded; charset=utf8"
    unreadable = make_client().generic("POST", "/b/e/move", "direction=d", form, **JSON)
    assert unreadable.json() == {"error": "bad request"}


def test_browsers_still_get_pages(make_client: type[Client]) -> None:
    strict = make_client(enforce_csrf_checks=True)
    no_token = strict.post("/b/e/move", {"direction": "d"})
    assert no_token.status_code == 403 and no_token["Content-Type"].startswith("text/html")
    missing = strict.get("/nowhere/")
    assert missing.status_code == 404 and missing["Content-Type"].startswith("text/html")


def test_head_is_answered_wherever_get_is(dual_client: Client) -> None:
    for url in ("/", "/b/h/", "/b/h/state", "/go/?slug=h"):
        head, get = dual_client.head(url), dual_client.get(url)
        assert head.status_code == get.status_code, url
        assert head.content == b""


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("path", ["/b/e/", "/b/e/state", "/b/e/move"])
@pytest.mark.parametrize("accept", ["", "application/json"])
def test_a_refusal_before_the_frame_middleware_still_carries_every_header(
    make_client: type[Client], accept: str, path: str, method: str
) -> None:
    # A bad Host is refused in CommonMiddleware, outside XFrameOptionsMiddleware: before the
    # CSRF check, and before the view's 405.
    client = make_client(HTTP_HOST="evil.example", enforce_csrf_checks=True)
    answer = client.generic(method, path, HTTP_ACCEPT=accept)
    assert answer.status_code == 400
    assert answer["X-Frame-Options"] == "DENY"
    assert answer["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "Content-Security-Policy" in answer
    assert answer["Content-Type"].startswith("application/json" if accept else "text/html")


def test_json_refusals_speak_spanish_to_who_asks_for_it(make_client: type[Client]) -> None:
    strict = make_client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="es")
    no_token = strict.post("/b/e/move", {"direction": "d"}, **JSON)
    assert no_token.status_code == 403
    error = no_token.json()["error"]
    # Django's reason stays as Django says it, inside the Spanish sentence.
    assert error.startswith("Falló la comprobación CSRF: CSRF cookie not set. Pide una página")
    assert error.endswith("devuélvela en la cabecera X-CSRFToken.")
    assert strict.get("/nowhere/", **JSON).json() == {"error": "no encontrado"}
    form = "application/x-www-form-urlencoded; charset=utf8"
    lenient = make_client(HTTP_ACCEPT_LANGUAGE="es")
    unreadable = lenient.generic("POST", "/b/e/move", "direction=d", form, **JSON)
    assert unreadable.json() == {"error": "solicitud incorrecta"}


PAGES = {
    "en": {
        400: "Bad request (400)",
        403: "Forbidden (403)",
        404: "Not found (404)",
        500: "Server error (500)",
    },
    "es": {
        400: "Solicitud incorrecta (400)",
        403: "Prohibido (403)",
        404: "No encontrado (404)",
        500: "Error del servidor (500)",
    },
}


def said(answer: HttpResponseBase, language: str, status: int) -> None:
    page = answer.content.decode()
    assert answer.status_code == status
    assert f'<html lang="{language}">' in page
    assert f"<h1>{PAGES[language][status]}</h1>" in page


@pytest.mark.parametrize("language", ["en", "es"])
def test_browsers_error_pages_speak_their_language(
    make_client: type[Client], language: str
) -> None:
    client = make_client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE=language)
    said(client.get("/nowhere/"), language, 404)
    said(client.post("/b/e/move", {"direction": "d"}), language, 403)  # no CSRF token
    bad_host = make_client(HTTP_HOST="evil.example", HTTP_ACCEPT_LANGUAGE=language)
    said(bad_host.get("/"), language, 400)
    # Nothing of snake's raises PermissionDenied or fails on purpose: their views, as Django
    # calls them, in the language LanguageMiddleware would have chosen.
    request = RequestFactory(HTTP_HOST="127.0.0.1").get("/")
    with translation.override(language):
        said(errors.permission_denied(request, PermissionDenied()), language, 403)
        said(errors.server_error(request), language, 500)
