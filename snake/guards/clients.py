"""Who a client is, for the abuse limits: its address behind our trusted proxies, and the key
it is counted under.

Sessions are free to mint, so the limits count addresses. Django views read REMOTE_ADDR, which
snake.guards.proxies.ForwardedForMiddleware has already rewritten; the event-stream consumer runs
outside Django's middleware and asks scope_address(), which applies the same rule to the scope.
"""

from __future__ import annotations

import functools
import ipaddress

from asgiref.typing import HTTPScope
from django.conf import settings

from snake.guards import proxies

UNKNOWN = "unknown"


@functools.lru_cache(maxsize=8)
def _trusted(values: tuple[str, ...]) -> list[proxies.Network]:
    # Cached by value: parsed once per process, yet override_settings still takes effect.
    return proxies.parse_networks(list(values))


def scope_address(scope: HTTPScope) -> str:
    """Return the client's address for an ASGI scope, as the middleware sets REMOTE_ADDR."""
    client = scope.get("client")
    remote = client[0] if client else ""
    trusted = _trusted(tuple(settings.SNAKE_TRUSTED_PROXIES))
    if not trusted:
        return remote
    # Repeated headers count as one comma-separated list, as Django joins them into META.
    forwarded = b",".join(v for n, v in scope.get("headers", []) if n == b"x-forwarded-for")
    return proxies.client_address(remote, forwarded.decode("latin-1"), trusted)


def key(address: str) -> str:
    """Return what a limit counts `address` under: an IPv4 address, or an IPv6 /64.

    One IPv6 subscriber gets a whole /64 and could take a fresh address per request, so the
    /64 is the client. Anything that is not an address (no client in the scope, a unix socket)
    is counted under one shared "unknown" key rather than escaping the limits.
    """
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return UNKNOWN
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
