"""Error answers: JSON `{"error"}` when JSON was asked for by name, else Django's own pages.

Scripts that speak JSON to the move endpoint get JSON for every refusal, not only for the ones
the views make: a CSRF failure, an unknown board URL, a bad request. Both carry every security
header: a bad Host is refused inside the middleware chain, before the one adding X-Frame-Options.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.views import csrf, defaults

from snake.guards import refusal

View = Callable[..., HttpResponse]


def _json_or(page: View, status: int, error: str) -> View:
    def view(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if refusal.wants_json(request):
            return refusal.response(request, status, error)
        return refusal.secured(page(request, *args, **kwargs))

    return view


# Django's views without their @requires_csrf_token: it re-runs the CSRF check, which reads
# request.POST again; when reading it is what failed (a form body with "charset=utf8" raises
# BadRequest), the 400 view raised too and the client got a 500.
bad_request = _json_or(inspect.unwrap(defaults.bad_request), 400, "bad request")
permission_denied = _json_or(inspect.unwrap(defaults.permission_denied), 403, "forbidden")
page_not_found = _json_or(inspect.unwrap(defaults.page_not_found), 404, "not found")
server_error = _json_or(inspect.unwrap(defaults.server_error), 500, "server error")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if refusal.wants_json(request):
        error = f"CSRF check failed: {reason.rstrip('.')}. GET a page for the csrftoken "
        error += "cookie, then send it back in the X-CSRFToken header."
        return refusal.response(request, 403, error)
    return refusal.secured(csrf.csrf_failure(request, reason))
