"""Debian's Chromium for the browser tests: one way to launch it, skipped loudly where missing."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

CHROMIUM = os.environ.get("SNAKE_CHROMIUM", "/usr/bin/chromium")
MISSING = f"SKIPPED BROWSER TESTS: no {CHROMIUM} (apt-get install chromium; .ci/run does)"
ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
needs_chromium = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=MISSING)


@contextlib.contextmanager
def launched(args: Sequence[str] = ()) -> Iterator[Any]:
    """Launch Debian's Chromium through Playwright (never a downloaded one): ARGS, then `args`."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(MISSING)
    sync_api = pytest.importorskip("playwright.sync_api")
    # Generous waits (Playwright's own is 5 s): CI shares two cores with everything else, and a
    # move's round trip through a loaded server and browser once took longer than that.
    sync_api.expect.set_options(timeout=15_000)
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, *args])
        try:
            yield chromium
        finally:
            chromium.close()


def streaming(page: Any, on: bool = True) -> None:
    """Wait until the page holds its stream (on) or holds none.

    A page loads asleep and htmx then swaps its live part, forms and all, for the awake one:
    a key pressed before that may meet forms on their way out. A page is loaded once it streams.
    """
    from playwright.sync_api import expect

    expect(page.locator("#live[sse-connect]")).to_have_count(1 if on else 0)
