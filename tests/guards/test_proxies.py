from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory, override_settings

from snake.guards.proxies import ForwardedForMiddleware, client_address, parse_networks

LOOPBACK = parse_networks(["127.0.0.1", "::1"])


@pytest.mark.parametrize(
    ("remote", "forwarded", "client"),
    [
        ("127.0.0.1", "203.0.113.9", "203.0.113.9"),
        ("127.0.0.1", "198.51.100.1, 203.0.113.9", "203.0.113.9"),  # rightmost untrusted hop
        ("127.0.0.1", "203.0.113.9, 127.0.0.1", "203.0.113.9"),
        ("::1", "2001:db8::5", "2001:db8::5"),
        ("127.0.0.1", "", "127.0.0.1"),
        ("127.0.0.1", "not-an-ip", "127.0.0.1"),
        ("203.0.113.7", "198.51.100.1", "203.0.113.7"),  # not from a proxy: header ignored
    ],
)
def test_client_address(remote: str, forwarded: str, client: str) -> None:
    assert client_address(remote, forwarded, LOOPBACK) == client


def test_networks_are_accepted_and_nonsense_says_the_fix() -> None:
    assert parse_networks(["10.0.0.0/8"])[0].num_addresses == 2**24
    with pytest.raises(ImproperlyConfigured, match="SNAKE_TRUSTED_PROXIES"):
        parse_networks(["localhost"])


def echo(request: HttpRequest) -> HttpResponse:
    return HttpResponse(request.META["REMOTE_ADDR"])


def test_middleware_rewrites_only_when_configured() -> None:
    request = RequestFactory().get("/", HTTP_X_FORWARDED_FOR="203.0.113.9")
    with override_settings(SNAKE_TRUSTED_PROXIES=[]):
        assert ForwardedForMiddleware(echo)(request).content == b"127.0.0.1"
    with override_settings(SNAKE_TRUSTED_PROXIES=["127.0.0.1"]):
        assert ForwardedForMiddleware(echo)(request).content == b"203.0.113.9"
