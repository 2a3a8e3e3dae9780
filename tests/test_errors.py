from __future__ import annotations

import pytest
from django.test import Client

JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.mark.django_db
def test_refusals_answer_json_when_json_was_asked_for() -> None:
    strict = Client(enforce_csrf_checks=True)
    no_token = strict.post("/b/e/move", {"direction": "d"}, **JSON)
    assert no_token.status_code == 403
    assert "X-CSRFToken" in no_token.json()["error"]
    assert strict.get("/nowhere/", **JSON).json() == {"error": "not found"}
    assert strict.get("/b/Bad_Slug/state", **JSON).status_code == 404
    # A body Django refuses to read (BadRequest) reaches the 400 handler.
    form = "application/x-www-form-urlencoded; charset=utf8"
    unreadable = Client().generic("POST", "/b/e/move", "direction=d", form, **JSON)
    assert unreadable.json() == {"error": "bad request"}


@pytest.mark.django_db
def test_browsers_still_get_pages() -> None:
    strict = Client(enforce_csrf_checks=True)
    no_token = strict.post("/b/e/move", {"direction": "d"})
    assert no_token.status_code == 403 and no_token["Content-Type"].startswith("text/html")
    missing = strict.get("/nowhere/")
    assert missing.status_code == 404 and missing["Content-Type"].startswith("text/html")


@pytest.mark.django_db
def test_head_is_answered_wherever_get_is() -> None:
    client = Client()
    for url in ("/", "/b/h/", "/b/h/state", "/go/?slug=h"):
        head, get = client.head(url), client.get(url)
        assert head.status_code == get.status_code, url
        assert head.content == b""


@pytest.mark.django_db
@pytest.mark.parametrize("accept", ["", "application/json"])
def test_a_refusal_before_the_frame_middleware_still_carries_every_header(accept: str) -> None:
    # A bad Host is refused in CommonMiddleware, outside XFrameOptionsMiddleware.
    answer = Client(HTTP_HOST="evil.example").get("/b/e/", HTTP_ACCEPT=accept)
    assert answer.status_code == 400
    assert answer["X-Frame-Options"] == "DENY"
    assert answer["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "Content-Security-Policy" in answer
    assert answer["Content-Type"].startswith("application/json" if accept else "text/html")
