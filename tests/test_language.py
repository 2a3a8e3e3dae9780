"""LanguageMiddleware: Django's LocaleMiddleware's choice and headers, with less work."""

from __future__ import annotations

from typing import cast

import pytest
from django.http import HttpRequest, HttpResponse
from django.middleware.locale import LocaleMiddleware
from django.test import RequestFactory
from django.utils import translation

from snake import language
from snake.language import LanguageMiddleware

HEADERS = [
    ("", None),
    ("es", None),
    ("es-MX,es;q=0.9,en;q=0.8", None),
    ("en-GB,en;q=0.9,es;q=0.8", None),
    ("fr-FR,fr;q=0.9", None),
    ("fr,es;q=0.5", None),
    ("*", None),
    ("es;q=0,en", None),
    ("en", "es"),
    ("es", "en"),
    ("es", "xx-not-a-language"),
    ("!!!,;;q=x", None),
]


def answered(
    middleware_class: type[LocaleMiddleware], accept: str, cookie: str | None
) -> dict[str, str]:
    factory = RequestFactory(HTTP_ACCEPT_LANGUAGE=accept)
    if cookie is not None:
        factory.cookies["django_language"] = cookie

    def view(request: HttpRequest) -> HttpResponse:
        return HttpResponse(translation.get_language())

    response = cast(HttpResponse, middleware_class(view)(factory.get("/b/default/state")))
    translation.deactivate()
    return {
        "language": response.content.decode(),
        "vary": response.headers["Vary"],
        "content-language": response.headers["Content-Language"],
    }


@pytest.mark.parametrize(("accept", "cookie"), HEADERS)
def test_it_chooses_and_says_what_djangos_locale_middleware_does(
    accept: str, cookie: str | None
) -> None:
    assert answered(LanguageMiddleware, accept, cookie) == answered(
        LocaleMiddleware, accept, cookie
    )


def test_spanish_is_chosen_for_a_browser_that_asks_for_it_first() -> None:
    assert answered(LanguageMiddleware, "es-ES,es;q=0.9,en;q=0.8", None)["language"] == "es"
    assert answered(LanguageMiddleware, "de,en;q=0.9,es;q=0.8", None)["language"] == "en"


def test_a_browsers_header_is_chosen_once_a_strangers_long_one_every_time() -> None:
    short = "es-AR,es;q=0.9"
    language.of(None, short)
    hits = language._chosen.cache_info().hits
    assert language.of(None, short) == "es"
    assert language._chosen.cache_info().hits == hits + 1
    long = "es," + ",".join(f"de-x{i};q=0.1" for i in range(25))
    assert len(long) > language.CACHED_HEADER
    size = language._chosen.cache_info().currsize
    assert language.of(None, long) == "es"
    assert language._chosen.cache_info().currsize == size
