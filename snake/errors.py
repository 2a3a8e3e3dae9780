"""Error answers: JSON `{"error"}` when JSON was asked for by name, else Django's own pages.

Scripts that speak JSON to the move endpoint get JSON for every refusal, not only for the ones
the views make: a CSRF failure, an unknown board URL, a bad request. Both carry every security
header: a bad Host is refused inside the middleware chain, before the one adding X-Frame-Options.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import csrf, defaults

from snake.guards import refusal

View = Callable[..., HttpResponse]


def _json_or(page: View, status: int, error: Promise) -> View:
    # `error` is lazy: made once, said in the language of each request that gets it.
    def view(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if refusal.wants_json(request):
            return refusal.response(request, status, str(error))
        return refusal.secured(page(request, *args, **kwargs))

    return view


# Django's views without their @requires_csrf_token: it re-runs the CSRF check, which reads
# request.POST again; when reading it is what failed (a form body with "charset=utf8" raises
# BadRequest), the 400 view raised too and the client got a 500.
bad_request = _json_or(inspect.unwrap(defaults.bad_request), 400, gettext_lazy("bad request"))
permission_denied = _json_or(
    inspect.unwrap(defaults.permission_denied), 403, gettext_lazy("forbidden")
)
page_not_found = _json_or(inspect.unwrap(defaults.page_not_found), 404, gettext_lazy("not found"))
server_error = _json_or(inspect.unwrap(defaults.server_error), 500, gettext_lazy("server error"))


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if refusal.wants_json(request):
        # Django's reasons are English constants: they stay so inside the translated sentence.
        error = _(
            "CSRF check failed: %(reason)s. GET a page for the csrftoken cookie, then send it "
            "back in the X-CSRFToken header."
        ) % {"reason": reason.rstrip(".")}
        return refusal.response(request, 403, error)
    return refusal.secured(csrf.csrf_failure(request, reason))
