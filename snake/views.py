"""Thin function views over the board rules and the event stream."""

from __future__ import annotations

import math

from django.conf import settings
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST, require_safe
from django_htmx.middleware import HtmxDetails

from snake import board, channel, logos
from snake.guards import local, ratelimit
from snake.guards.refusal import response as refusal
from snake.guards.refusal import wants_json
from snake.stream import responses

# Lazy: each refusal speaks the language of the request it answers (LanguageMiddleware's).
FROZEN = gettext_lazy("This board is frozen: a moderator has stopped moves for now. Nothing moved.")
NOT_LOCAL = gettext_lazy(
    "Only manage.py board on this server's machine may ask for this (signed, loopback)."
)


class HttpResponseSeeOther(HttpResponseRedirect):
    status_code = 303


class HtmxHttpRequest(HttpRequest):
    """A request as django-htmx's middleware leaves it."""

    htmx: HtmxDetails


def _page(
    request: HttpRequest, slug: str, status: int = 200, error: str = "", template: str = "board"
) -> HttpResponse:
    context = {
        "position": board.current(slug),
        "meta": channel.meta(slug),
        "viewers": channel.watching(slug),
        "controls": channel.CONTROLS,
        "settings": {
            "board_w": settings.SNAKE_BOARD_WIDTH,
            "board_h": settings.SNAKE_BOARD_HEIGHT,
            "logo_w": settings.SNAKE_LOGO_WIDTH,
            "logo_h": settings.SNAKE_LOGO_HEIGHT,
        },
        "error": error,
        "awake": request.GET.get("stream") != "off",
    }
    response = render(request, f"snake/{template}.html", context, status=status)
    patch_vary_headers(response, ["HX-Request"])  # one URL, two answers: a cache must know
    return response


@require_safe
def board_page(request: HtmxHttpRequest, slug: str = board.DEFAULT_SLUG) -> HttpResponse:
    # htmx asks for the live part alone when a tab is shown (awake) or hidden (?stream=off),
    # and the awake part's fallback polls it (?poll=1: only a marker, answered awake).
    if request.htmx:
        return _page(request, slug, template="_live")
    return _page(request, slug)


@require_safe
def go(request: HttpRequest) -> HttpResponse:
    """Open the board named in the "go to board" form."""
    slug = request.GET.get("slug", "").strip().lower().replace(" ", "-")
    if not board.is_valid_slug(slug):
        error = _(
            "A board name is 1–40 letters, digits or dashes, starting with a letter or digit."
        )
        return _page(request, board.DEFAULT_SLUG, status=400, error=error)
    return HttpResponseSeeOther(reverse("board", args=[slug]))


def _slow_down(request: HttpRequest, wait: float) -> HttpResponse:
    """429 for a client over the move limit: nothing moved, and it says when to try again."""
    wait = max(wait, 0.01)  # a wait of a few microseconds still reads as one: "0.01 s"
    error = _(
        "Slow down: moves are limited to %(rate)d/s per address (bursts of %(burst)d). "
        "Try again in %(wait)s s."
    ) % {
        "rate": settings.SNAKE_MOVES_PER_SECOND,
        "burst": settings.SNAKE_MOVES_BURST,
        "wait": number_format(round(wait, 2), 2),  # "0.05" in English, "0,05" in Spanish
    }
    retry = {"Retry-After": str(max(1, math.ceil(wait)))}  # whole seconds, as HTTP wants
    return refusal(request, 429, error, retry, retry_after=round(wait, 3))


@require_POST
def move(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    # Before anything else, so that bad requests spend the bucket too.
    wait = ratelimit.take(request.META.get("REMOTE_ADDR", ""))
    if wait:
        return _slow_down(request, wait)
    try:
        step = board.parse_direction(request.POST.get("direction"))
    except board.InvalidDirection as exc:
        return refusal(request, 400, str(exc))
    try:
        position, changed = board.move(slug, step)
    except board.Frozen:
        return refusal(request, 423, str(FROZEN))
    if changed:
        channel.publish(position)
    if wants_json(request):
        return JsonResponse(position.as_dict())
    if request.htmx:
        return HttpResponse(status=204)
    return HttpResponseSeeOther(reverse("board", args=[slug]))


@require_safe
def state(request: HttpRequest, slug: str) -> JsonResponse:
    return JsonResponse({**board.current(slug).as_dict(), "viewers": channel.watching(slug)})


@csrf_exempt  # the signature stands in for the token: no browser makes this request
@require_POST
def republish(request: HttpRequest, slug: str) -> HttpResponse:
    """Show every viewer the board's stored state, for `manage.py board` on this machine."""
    if not local.allowed(request, slug):
        return refusal(request, 403, str(NOT_LOCAL))
    channel.republish(slug)
    return HttpResponse(status=204)


@require_safe
def logo(request: HttpRequest, name: str) -> HttpResponse:
    """Serve an uploaded logo; its name is its content's hash, so it may be cached for good."""
    found = logos.find(name)
    if found is None:
        return refusal(request, 404, _("No such logo."))
    response = HttpResponse(found[0], content_type=found[1])
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


@require_safe
def stream(request: HttpRequest, slug: str) -> HttpResponseBase:
    """Serve the board's stream to the GRIP proxy; snake.stream.routing sends the rest elsewhere."""
    return responses.serve(request, channel.name(slug))
