"""Security headers for the responses Django's middleware never sees (the event stream)."""

from __future__ import annotations

import functools

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

Headers = list[tuple[bytes, bytes]]


@functools.cache
def _security_headers() -> tuple[tuple[bytes, bytes], ...]:
    headers = {}
    # The same settings Django's SecurityMiddleware and XFrameOptionsMiddleware read.
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers["X-Content-Type-Options"] = "nosniff"
    if settings.SECURE_REFERRER_POLICY:
        policy = settings.SECURE_REFERRER_POLICY
        headers["Referrer-Policy"] = policy if isinstance(policy, str) else ",".join(policy)
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers["Cross-Origin-Opener-Policy"] = settings.SECURE_CROSS_ORIGIN_OPENER_POLICY
    headers["X-Frame-Options"] = getattr(settings, "X_FRAME_OPTIONS", "DENY").upper()
    # Built by the function django-csp's middleware builds the page's policy with, from the same
    # settings: a page's policy and the stream's cannot drift apart.
    for header, report_only in ((HEADER, False), (HEADER_REPORT_ONLY, True)):
        policy = build_policy(report_only=report_only)
        if policy:
            headers[header] = policy
    return tuple((k.encode(), v.encode()) for k, v in headers.items())


@receiver(setting_changed)
def _forget(**_: object) -> None:
    # Built once per process (a connect storm built the CSP 10,000 times); a test that
    # overrides a setting gets the headers of the new settings.
    _security_headers.cache_clear()
    _stream_headers.cache_clear()


def security_headers() -> Headers:
    """Return the headers Django's middleware would add to any response: for the consumer's own."""
    return list(_security_headers())


@functools.cache
def _stream_headers() -> tuple[tuple[bytes, bytes], ...]:
    stream = (
        (b"Content-Type", b"text/event-stream"),
        (b"Cache-Control", b"no-cache"),
        (b"X-Accel-Buffering", b"no"),
    )
    return stream + _security_headers()


def stream_headers() -> Headers:
    """Return the stream's headers: django-eventstream's plus Django's security headers."""
    return list(_stream_headers())
