"""Refuse a request body declared in a charset that cannot decode text, before anything reads it.

Django decodes form fields with the request's declared charset; one that is a codec but not a
text encoding ("rot13", "hex") or that cannot decode arbitrary bytes ("idna") makes its
multipart parser raise, and the CSRF check reads the form before any view: a 500. No browser
sends such a body, so it gets a 400 that names the problem.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin
from django.utils.translation import gettext as _

from snake.guards.refusal import response


def decodes_text(charset: str) -> bool:
    try:
        b"x\xff".decode(charset, "replace")
    except (LookupError, UnicodeError):
        return False
    return True


class BodyCharsetMiddleware(MiddlewareMixin):
    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        # request.encoding is set only from a charset Python knows as a codec.
        if request.encoding and request.method == "POST" and not decodes_text(request.encoding):
            error = _("the body's charset %(charset)s cannot decode text; send UTF-8") % {
                "charset": repr(request.encoding)
            }
            return response(request, 400, error)
        return None
