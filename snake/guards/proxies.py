"""Take the client's address from X-Forwarded-For, but only when a trusted proxy sent it."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from ipaddress import IPv4Network, IPv6Network

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponseBase

Network = IPv4Network | IPv6Network
# The rest of the chain: a response, or (under ASGI) an awaitable of one.
Response = HttpResponseBase | Awaitable[HttpResponseBase]


def parse_networks(values: list[str]) -> list[Network]:
    try:
        return [ipaddress.ip_network(value, strict=False) for value in values]
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"SNAKE_TRUSTED_PROXIES: {exc}; give addresses or networks, e.g. 127.0.0.1,::1"
        ) from exc


def _is_trusted(address: str, trusted: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_address(remote_addr: str, forwarded_for: str, trusted: list[Network]) -> str:
    """Return the nearest address in the chain that is not one of our trusted proxies."""
    if not _is_trusted(remote_addr, trusted):
        return remote_addr
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop.strip("[]")))
            except ValueError:
                return remote_addr  # garbage in the header: keep the proxy's own address
    return hops[0] if hops else remote_addr


class ForwardedForMiddleware:
    """Set REMOTE_ADDR to the real client when the request came through a trusted proxy."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Response]) -> None:
        self.get_response = get_response
        self.trusted = parse_networks(settings.SNAKE_TRUSTED_PROXIES)
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def _rewrite(self, request: HttpRequest) -> None:
        if self.trusted:
            request.META["REMOTE_ADDR"] = client_address(
                request.META.get("REMOTE_ADDR", ""),
                request.META.get("HTTP_X_FORWARDED_FOR", ""),
                self.trusted,
            )

    def __call__(self, request: HttpRequest) -> Response:
        # Under ASGI get_response is a coroutine function (self is marked as one too): its
        # coroutine is returned as is, for Django to await.
        self._rewrite(request)
        return self.get_response(request)
