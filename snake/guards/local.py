"""Let only this machine's own `manage.py board` ask the server to show a board's new state.

A request passes when it comes from a loopback address without a proxy's X-Forwarded-For, and
carries the board's name signed with SECRET_KEY a moment ago: a local proxy relaying someone
else's request has no signature, and a signature alone is no use from elsewhere.
"""

from __future__ import annotations

import ipaddress

from django.core import signing
from django.http import HttpRequest

HEADER = "X-Snake-Signed"
SALT = "snake.guards.local"
MAX_AGE = 60  # seconds a signature is good for


def sign(slug: str) -> dict[str, str]:
    """Return the headers that let this machine's request through for `slug`."""
    return {HEADER: signing.TimestampSigner(salt=SALT).sign(slug)}


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def allowed(request: HttpRequest, slug: str) -> bool:
    if not _loopback(request.META.get("REMOTE_ADDR", "")) or "X-Forwarded-For" in request.headers:
        return False
    try:
        signed = signing.TimestampSigner(salt=SALT).unsign(
            request.headers.get(HEADER, ""), max_age=MAX_AGE
        )
    except signing.BadSignature:
        return False
    return signed == slug
