"""Refuse a request, one way per layer: a Django response, or raw ASGI messages.

Every refusal answers JSON `{"error"}` when JSON was asked for by name; else, in the Django
layer, a note for the page's status area when htmx sent the request, and plain text otherwise.
Every refusal carries the security headers of any page, set here from the settings Django's
middleware reads: a refusal made by a middleware (the charset check, Django's host check) never
passes the ones after it in MIDDLEWARE (X-Frame-Options' among them), and an ASGI refusal (the
body cap, the stream consumer) passes none.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from asgiref.typing import ASGISendCallable, HTTPScope
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

from snake import language
from snake.guards import security

TEXT = "text/plain; charset=utf-8"
STREAM_RETRY_AFTER = 10  # seconds; a stream frees up only when a viewer leaves, so a guess
# The page's status area shows a 4xx answer (htmx response-targets); this note fades by itself.
NOTE = "snake/_note.html"


def asks_json(accept: str) -> bool:
    # Not request.accepts(): a browser's form POST accepts */* and must get its page.
    return "application/json" in accept


def wants_json(request: HttpRequest) -> bool:
    return asks_json(request.headers.get("Accept", ""))


def from_htmx(request: HttpRequest) -> bool:
    # The header, not request.htmx: the charset check runs before django-htmx's middleware.
    return request.headers.get("HX-Request") == "true"


def secured(answer: HttpResponse) -> HttpResponse:
    """Give `answer` every security header it lacks, as the middleware would have."""
    for name, value in security.security_headers():
        answer.headers.setdefault(name.decode(), value.decode())
    return answer


def response(
    request: HttpRequest,
    status: int,
    error: str,
    headers: Mapping[str, str] | None = None,
    **extra: object,
) -> HttpResponse:
    """Answer a refused request: JSON `{"error", **extra}`, an htmx note, or plain text."""
    answer: HttpResponse
    if wants_json(request):
        answer = JsonResponse({"error": error, **extra}, status=status)
    elif from_htmx(request):
        answer = HttpResponse(render_to_string(NOTE, {"note": error}), status=status)
    else:
        answer = HttpResponse(error, status=status, content_type=TEXT)
    for name, value in (headers or {}).items():
        answer[name] = value
    return secured(answer)


def too_many_streams() -> tuple[str, dict[str, str]]:
    """Say why the stream cap (snake.guards.streamcap) refused a stream, and when to retry."""
    error = _(
        "Too many event streams from your address: at most %(cap)d at once. Close some, or "
        "retry in %(retry)d s."
    ) % {"cap": settings.SNAKE_MAX_STREAMS_PER_IP, "retry": STREAM_RETRY_AFTER}
    return error, {"Retry-After": str(STREAM_RETRY_AFTER)}


def speaking(scope: HTTPScope) -> translation.override:
    """Speak the scope's Accept-Language, for refusals made where LanguageMiddleware never runs."""
    accept = b",".join(v for n, v in scope.get("headers", ()) if n == b"accept-language")
    return translation.override(language.of(None, accept.decode("latin-1")))


def body_for(accept: str, error: str) -> tuple[bytes, bytes]:
    """Return the refusal's body and content type for a request's Accept header."""
    if asks_json(accept):
        return json.dumps({"error": error}).encode(), b"application/json"
    return f"{error}\n".encode(), TEXT.encode()


async def send_asgi(
    scope: HTTPScope,
    send: ASGISendCallable,
    status: int,
    error: str,
    headers: Mapping[str, str] | None = None,
    *,
    more_body: bool = False,
) -> None:
    """Send a refusal on an ASGI connection that Django's middleware never sees.

    more_body: leave the response open; the caller ends it with an empty body message (the
    body cap drains the request first, which the server allows only before the response ends).
    """
    accept = b",".join(v for n, v in scope.get("headers", ()) if n == b"accept")
    content, kind = body_for(accept.decode("latin-1"), error)
    raw = [
        (b"content-type", kind),
        (b"content-length", str(len(content)).encode()),
        *((n.lower().encode(), v.encode()) for n, v in (headers or {}).items()),
        *security.security_headers(),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw, "trailers": False})
    await send({"type": "http.response.body", "body": content, "more_body": more_body})
