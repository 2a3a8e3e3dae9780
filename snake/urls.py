from __future__ import annotations

from django.urls import path, register_converter
from django.views import defaults

from snake import board, views


class SlugConverter:
    regex = board.SLUG_PATTERN

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(SlugConverter, "board")

urlpatterns = [
    path("", views.board_page, name="home"),
    path("go/", views.go, name="go"),
    path("b/<board:slug>/", views.board_page, name="board"),
    path("b/<board:slug>/move", views.move, name="move"),
    path("b/<board:slug>/state", views.state, name="state"),
    path("b/<board:slug>/events/", views.stream, name="events"),
]

# Django's own error views, without their @requires_csrf_token: it re-runs the CSRF check, which
# reads request.POST again; when reading it is what failed (a form body with "charset=utf8"
# raises BadRequest), the 400 view raised too and the client got a 500.
handler400 = defaults.bad_request.__wrapped__
handler403 = defaults.permission_denied.__wrapped__
handler404 = defaults.page_not_found.__wrapped__
handler500 = defaults.server_error.__wrapped__
