from __future__ import annotations

from django.contrib import admin
from django.urls import path, re_path, register_converter

from snake import board, errors, views


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
    path("local/b/<board:slug>/publish", views.republish, name="republish"),
    re_path(r"^logos/(?P<name>[0-9a-f]{64}\.(?:png|webp|jpeg))$", views.logo, name="logo"),
    path("admin/", admin.site.urls),
]

handler400 = errors.bad_request
handler403 = errors.permission_denied
handler404 = errors.page_not_found
handler500 = errors.server_error
