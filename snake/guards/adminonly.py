"""Sessions, auth, messages and the login lock for the admin only: the board's carry no cookie.

Django's SessionMiddleware adds `Vary: Cookie` to every response that reads the session and
sets `sessionid` once it is written; the board's pages, moves and streams need neither, and a
cache or the bench must not see them. So they run, in Django's order, for paths under PREFIX
alone. (Django's and django-axes's checks look for them in MIDDLEWARE: settings silence those.)
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase
from django.utils.module_loading import import_string

PREFIX = "/admin/"
CHAIN = (
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "axes.middleware.AxesMiddleware",  # the login lock's answer (snake/settings.py, AXES_*)
)
GetResponse = Callable[[HttpRequest], HttpResponseBase]


class AdminOnlyMiddleware:
    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        admin = get_response
        for path in reversed(CHAIN):
            admin = import_string(path)(admin)
        self.admin = admin

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.path_info.startswith(PREFIX):
            return self.admin(request)
        return self.get_response(request)
