"""Answer each request in its language as Django's LocaleMiddleware does, for less work."""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.middleware.locale import LocaleMiddleware
from django.utils import translation
from django.utils.cache import patch_vary_headers

# Longer headers are chosen for uncached, so that strangers' headers cannot fill memory.
CACHED_HEADER = 200


class LanguageMiddleware(LocaleMiddleware):
    """Django's LocaleMiddleware for URLs without language prefixes, its choice cached."""

    # Django's asks the URLconf for i18n_patterns and matches the path for a language prefix
    # twice per request, then parses Accept-Language: a fifth of a state read's CPU, profiled
    # (README, "Speed"). snake's URLs carry no prefix, so the choice depends on two headers.
    def process_request(self, request: HttpRequest) -> None:
        cookie = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        language = of(cookie, request.META.get("HTTP_ACCEPT_LANGUAGE", ""))
        translation.activate(language)
        request.LANGUAGE_CODE = language

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        patch_vary_headers(response, ("Accept-Language",))
        response.headers.setdefault("Content-Language", translation.get_language())
        return response


def choose(cookie: str | None, accept: str) -> str:
    """The language Django would choose for this language cookie and Accept-Language."""
    request = HttpRequest()
    request.COOKIES = {} if cookie is None else {settings.LANGUAGE_COOKIE_NAME: cookie}
    request.META = {"HTTP_ACCEPT_LANGUAGE": accept}
    return translation.get_language_from_request(request)


_chosen = lru_cache(maxsize=256)(choose)


def of(cookie: str | None, accept: str) -> str:
    """The language for these headers, cached while they are of a browser's length."""
    if len(accept) > CACHED_HEADER or (cookie and len(cookie) > CACHED_HEADER):
        return choose(cookie, accept)
    return _chosen(cookie, accept)
