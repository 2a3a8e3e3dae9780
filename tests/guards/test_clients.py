from __future__ import annotations

import pytest
from django.test import override_settings

from snake.guards import clients


def scope(client: str | None, forwarded: str | None = None) -> dict:
    headers = [(b"host", b"127.0.0.1")]
    if forwarded is not None:
        headers.append((b"x-forwarded-for", forwarded.encode()))
    return {"client": [client, 50000] if client else None, "headers": headers}


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    with override_settings(SNAKE_TRUSTED_PROXIES=[]):
        assert clients.scope_address(scope("127.0.0.1", "198.51.100.7")) == "127.0.0.1"


@override_settings(SNAKE_TRUSTED_PROXIES=["127.0.0.1", "::1"])
def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client() -> None:
    assert clients.scope_address(scope("127.0.0.1", "198.51.100.7")) == "198.51.100.7"
    # A client's own X-Forwarded-For entries are not believed: the nearest untrusted hop wins.
    assert clients.scope_address(scope("127.0.0.1", "1.2.3.4, 198.51.100.7")) == "198.51.100.7"
    assert clients.scope_address(scope("203.0.113.5", "198.51.100.7")) == "203.0.113.5"
    assert clients.scope_address(scope("127.0.0.1")) == "127.0.0.1"


@override_settings(SNAKE_TRUSTED_PROXIES=["127.0.0.1"])
def test_repeated_forwarded_headers_read_as_one_list_like_django() -> None:
    both = scope("127.0.0.1", "1.2.3.4")
    both["headers"].append((b"x-forwarded-for", b"198.51.100.7"))
    assert clients.scope_address(both) == "198.51.100.7"


def test_a_scope_without_a_client_is_unknown() -> None:
    assert clients.key(clients.scope_address(scope(None))) == clients.UNKNOWN


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("198.51.100.7", "198.51.100.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),  # the same subscriber
        ("[2001:db8:1:3::1]", "2001:db8:1:3::/64"),  # another one
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("", clients.UNKNOWN),
        ("not an address", clients.UNKNOWN),
    ],
)
def test_keys_are_ipv4_addresses_and_ipv6_64s(address: str, key: str) -> None:
    assert clients.key(address) == key
