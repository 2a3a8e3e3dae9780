"""The loopback endpoint `manage.py board` uses: signed, from this machine, for one board."""

from __future__ import annotations

import time

import pytest
from django.core import signing
from django.test import Client

from snake.guards import local

pytestmark = pytest.mark.django_db


def _meta(headers: dict[str, str]) -> dict[str, str]:
    return {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}


def publish(client: Client, slug: str, **meta: str):
    return client.post(f"/local/b/{slug}/publish", **meta)


def test_a_signed_loopback_request_is_answered_204(client: Client) -> None:
    assert publish(client, "mine", **_meta(local.sign("mine"))).status_code == 204


@pytest.mark.parametrize(
    "signed",
    [
        lambda: {},  # no signature
        lambda: {"HTTP_X_SNAKE_SIGNED": "mine:forged:sig"},
        lambda: _meta(local.sign("other")),
    ],
    ids=["none", "forged", "another-board"],
)
def test_unsigned_forged_or_another_boards_signature_is_403(client: Client, signed) -> None:
    response = publish(client, "mine", **signed(), HTTP_ACCEPT="application/json")
    assert response.status_code == 403 and "manage.py board" in response.json()["error"]


def test_from_another_address_or_through_a_proxy_it_is_403(client: Client) -> None:
    signed = _meta(local.sign("mine"))
    assert publish(client, "mine", REMOTE_ADDR="192.0.2.7", **signed).status_code == 403
    assert publish(client, "mine", HTTP_X_FORWARDED_FOR="192.0.2.7", **signed).status_code == 403


def test_an_old_signature_is_refused(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    signed = _meta(local.sign("mine"))
    later = time.time() + local.MAX_AGE + 5
    monkeypatch.setattr(signing.time, "time", lambda: later)
    assert publish(client, "mine", **signed).status_code == 403


def test_only_post(client: Client) -> None:
    assert client.get("/local/b/mine/publish").status_code == 405
