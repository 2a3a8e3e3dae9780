"""Which stream requests the GRIP proxy signed: only a Grip-Sig that verifies with its key."""

from __future__ import annotations

import time

import jwt
from django.test import override_settings

from snake.stream import grip

KEY = "a-sig-key-as-long-as-pushpin-wants-it-0123456789"  # >= 32 bytes for HS256
PROXY = [{"control_uri": "http://127.0.0.1:9", "key": KEY, "verify_key": KEY}]


def signed(key: str = KEY, expires_in: float = 3600) -> str:
    """A Grip-Sig as Pushpin sends it: a JWT with an expiry, signed with its sig_key."""
    return jwt.encode({"iss": "pushpin", "exp": int(time.time() + expires_in)}, key)


def scope(signature: str | None) -> dict[str, object]:
    headers = [(b"host", b"127.0.0.1")]
    if signature is not None:
        headers.append((b"grip-sig", signature.encode()))
    return {"type": "http", "headers": headers}


def test_without_a_grip_proxy_no_signature_counts() -> None:
    assert not grip.verified(signed())
    assert not grip.scope_verified(scope(signed()))


@override_settings(GRIP_PROXIES=PROXY)
def test_a_signature_counts_only_when_it_verifies_with_the_key() -> None:
    assert grip.verified(signed())
    assert grip.scope_verified(scope(signed()))
    assert not grip.verified(signed(key="another-key-just-as-long-as-the-right-one-0123"))
    assert not grip.verified(signed(expires_in=-60))  # an old one, replayed
    assert not grip.verified("forged")
    assert not grip.verified(None)
    assert not grip.scope_verified(scope(None))


@override_settings(GRIP_PROXIES=[{"control_uri": "http://127.0.0.1:9"}])
def test_a_proxy_without_a_key_is_never_trusted() -> None:
    # django-grip alone would take any Grip-Sig as proxied when no key is configured.
    assert not grip.verified(signed())
