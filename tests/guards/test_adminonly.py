"""Sessions, auth and messages run under /admin/ only."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from snake.guards.adminonly import AdminOnlyMiddleware


def seen(path: str) -> HttpRequest:
    got: list[HttpRequest] = []

    def view(request: HttpRequest) -> HttpResponse:
        got.append(request)
        return HttpResponse()

    AdminOnlyMiddleware(view)(RequestFactory().get(path))
    return got[0]


def test_the_admin_gets_a_session_a_user_and_messages() -> None:
    request = seen("/admin/login/")
    assert hasattr(request, "session") and hasattr(request, "user")
    assert hasattr(request, "_messages")


def test_every_other_path_gets_none_of_them() -> None:
    for path in ("/", "/b/main/", "/b/main/move", "/administer/"):
        request = seen(path)
        assert not hasattr(request, "session") and not hasattr(request, "user"), path
