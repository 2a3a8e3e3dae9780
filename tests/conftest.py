from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import pytest

from tests.browser import launched
from tests.live import Daphne, Player

_slugs = itertools.count()


@pytest.fixture(scope="session", params=["daphne", "uvicorn"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Daphne]:
    """A real ASGI server for the session, daphne and uvicorn in turn (`make run` offers both).

    Tests keep apart by using their own board.
    """
    daphne = Daphne(tmp_path_factory.mktemp(request.param), server=request.param)
    daphne.start()
    yield daphne
    daphne.stop()


@pytest.fixture(autouse=True)
def _fresh_move_buckets() -> None:
    """Each test starts with full move buckets: the test client is always 127.0.0.1."""
    from django.core.cache import caches  # settings are configured once pytest-django ran
    from django.core.cache.backends.locmem import LocMemCache

    cache = caches["default"]
    if isinstance(cache, LocMemCache):  # never flush a Redis that REDIS_URL points at
        cache.clear()


@pytest.fixture
def slug(request: pytest.FixtureRequest) -> str:
    """A fresh board name, unique in the session."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower().removeprefix("test_"))
    return f"t{next(_slugs)}-{name}"[:40].strip("-")


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """Debian's Chromium, one per test module (each test opens its own contexts)."""
    with launched() as chromium:
        yield chromium


@pytest.fixture
def player(server: Daphne) -> Iterator[Player]:
    p = Player(server.url)
    yield p
    p.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say loudly what did not run: a skipped real-server test is not a passed one."""
    skipped = terminalreporter.stats.get("skipped", [])
    if skipped:
        reasons = sorted({str(report.longrepr[2]) for report in skipped})
        terminalreporter.write_sep("!", f"{len(skipped)} TESTS SKIPPED", red=True, bold=True)
        for reason in reasons:
            terminalreporter.write_line(f"  {reason}", red=True)
        terminalreporter.write_line("  .ci/run (as root) installs what they need.", red=True)
