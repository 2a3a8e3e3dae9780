"""Refuse a request, one way per layer: a Django response, or raw ASGI messages.

Every refusal answers JSON `{"error"}` when JSON was asked for by name, else plain text, and
carries the same security headers as any page: Django's middleware adds them to the Django
responses; `send_asgi` adds them itself for what runs in front of Django (the body cap and
the stream consumer).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from snake.guards import security

TEXT = "text/plain; charset=utf-8"


def asks_json(accept: str) -> bool:
    # Not request.accepts(): a browser's form POST accepts */* and must get its page.
    return "application/json" in accept


def wants_json(request: HttpRequest) -> bool:
    return asks_json(request.headers.get("Accept", ""))


def response(
    request: HttpRequest,
    status: int,
    error: str,
    headers: Mapping[str, str] | None = None,
    **extra: object,
) -> HttpResponse:
    """Answer a refused request: JSON `{"error", **extra}` when JSON was asked for, else text."""
    answer: HttpResponse
    if wants_json(request):
        answer = JsonResponse({"error": error, **extra}, status=status)
    else:
        answer = HttpResponse(error, status=status, content_type=TEXT)
    for name, value in (headers or {}).items():
        answer[name] = value
    return answer


def body_for(accept: str, error: str) -> tuple[bytes, bytes]:
    """Return the refusal's body and content type for a request's Accept header."""
    if asks_json(accept):
        return json.dumps({"error": error}).encode(), b"application/json"
    return f"{error}\n".encode(), TEXT.encode()


async def send_asgi(
    scope: Mapping[str, Any],
    send: Callable[[dict[str, Any]], Awaitable[None]],
    status: int,
    error: str,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Send a whole refusal on an ASGI connection that Django's middleware never sees."""
    accept = b",".join(v for n, v in scope.get("headers", ()) if n == b"accept")
    content, kind = body_for(accept.decode("latin-1"), error)
    raw = [
        (b"content-type", kind),
        (b"content-length", str(len(content)).encode()),
        *((n.lower().encode(), v.encode()) for n, v in (headers or {}).items()),
        *security.security_headers(),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": content})
