from __future__ import annotations

import pytest
from django.test import Client
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

from snake.guards.charset import decodes_text
from snake.models import Board


@pytest.mark.parametrize(
    ("charset", "ok"),
    [("utf-8", True), ("latin-1", True), ("rot13", False), ("hex", False), ("idna", False)],
)
def test_decodes_text(charset: str, ok: bool) -> None:
    assert decodes_text(charset) is ok


@pytest.mark.parametrize("accept", ["", "application/json"])
@pytest.mark.parametrize("charset", ["rot13", "idna"])
def test_a_form_in_a_charset_that_cannot_decode_is_a_400_not_a_500(
    make_client: type[Client], charset: str, accept: str
) -> None:
    client = make_client(HTTP_HOST="127.0.0.1", raise_request_exception=False)
    answer = client.generic(
        "POST",
        "/b/cs/move",
        encode_multipart(BOUNDARY, {"direction": "d"}),
        content_type=f"{MULTIPART_CONTENT}; charset={charset}",
        headers={"Accept": accept} if accept else {},
    )
    assert answer.status_code == 400
    assert charset in (answer.json()["error"] if accept else answer.content.decode())
    assert not Board.objects.exists()


def test_the_charset_refusal_speaks_spanish(make_client: type[Client]) -> None:
    client = make_client(HTTP_HOST="127.0.0.1", HTTP_ACCEPT_LANGUAGE="es")
    answer = client.generic(
        "POST",
        "/b/cs/move",
        encode_multipart(BOUNDARY, {"direction": "d"}),
        content_type=f"{MULTIPART_CONTENT}; charset=rot13",
    )
    assert answer.status_code == 400
    assert answer.content.decode() == (
        "la codificación 'rot13' declarada para el cuerpo no sirve para decodificar texto; "
        "envíalo en UTF-8"
    )
