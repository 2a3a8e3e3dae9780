from __future__ import annotations

import itertools
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.test import Client
from django_eventstream.views import get_listener_manager

from deploy.cluster import NO_LIMITS, Cluster, missing_binaries
from deploy.redis import Redis
from tests.browser import launched
from tests.listeners import Recording
from tests.live import CLUSTER_MISSING, REDIS_MISSING, Player, Server, free_port

_slugs = itertools.count()


@pytest.fixture(scope="session", params=["daphne", "uvicorn"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A real ASGI server for the session, daphne and uvicorn in turn (`make run` offers both).

    Tests keep apart by using their own board.
    """
    running = Server(tmp_path_factory.mktemp(request.param), server=request.param)
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="session", autouse=True)
def _python_defaults_for_the_tests() -> None:
    """Undo snake.asgi's tuning of the server process (GC, GIL switch) in this one.

    The tests import snake.asgi to serve requests in process; its GC thresholds would also
    delay when this process collects a test's leftovers, and pytest blames whichever test's
    gc.collect() finds them. The live servers keep the tuning.
    """
    import gc
    import sys

    import snake.asgi  # noqa: F401 -- tunes the process once, on import

    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    sys.setswitchinterval(0.005)


@pytest.fixture(autouse=True)
def _english_after_each_test() -> Iterator[None]:
    """Each test starts in the default language: LanguageMiddleware leaves the language a request
    asked for active in the test's thread, and a Spanish request would turn later ones Spanish."""
    from django.utils import translation

    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _fresh_move_buckets() -> None:
    """Each test starts with full move buckets: the test client is always 127.0.0.1."""
    from django.core.cache import caches  # settings are configured once pytest-django ran
    from django.core.cache.backends.locmem import LocMemCache

    cache = caches["default"]
    if isinstance(cache, LocMemCache):  # never flush a Redis that REDIS_URL points at
        cache.clear()


@pytest.fixture(
    params=[
        pytest.param("django", marks=pytest.mark.django_db),
        # snake.handler's thread has a database connection of its own: it sees only what the
        # test committed, and the test only what the thread committed.
        pytest.param("asgi", marks=pytest.mark.django_db(transaction=True)),
    ]
)
def make_client(request: pytest.FixtureRequest) -> Iterator[type[Client]]:
    """Django's test Client, then one served by snake.asgi.application: the code that serves.

    It gives the test its django_db mark: a test of its own marked django_db would override
    the transaction the "asgi" run needs (a function's marks come before its parameters').
    """
    if request.param == "django":
        yield Client
        return
    from tests.asgi_client import AsgiClient, reset_handler

    yield AsgiClient
    reset_handler()


@pytest.fixture
def dual_client(make_client: type[Client]) -> Client:
    """make_client(): pytest-django's `client`, served both ways."""
    return make_client()


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
def player(server: Server) -> Iterator[Player]:
    p = Player(server.url)
    yield p
    p.close()


@pytest.fixture
def listen() -> Iterator[Callable[[str], Recording]]:
    """Register a recording listener on a channel, as a stream would; all gone after the test."""
    made: list[Recording] = []

    def on(channel: str) -> Recording:
        made.append(Recording())
        made[-1].channels = {channel}
        get_listener_manager().add_listener(made[-1])
        return made[-1]

    yield on
    for listener in made:
        get_listener_manager().remove_listener(listener)


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[Redis]:
    """A redis-server of the test's own on a free port: the test may stop and start it."""
    if shutil.which("redis-server") is None:
        pytest.skip(REDIS_MISSING)
    server = Redis(free_port(), tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """`make cluster` on free ports (Pushpin, 2 workers, Redis), once for the session.

    Tests keep apart by their boards; one that stops a service starts it again before it ends.
    """
    if missing_binaries():
        pytest.skip(CLUSTER_MISSING)
    tmp = tmp_path_factory.mktemp("cluster")
    with Cluster(
        port=0, workers=2, workdir=tmp / "cluster", var_dir=tmp / "var", env=NO_LIMITS
    ) as running:
        yield running


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say loudly what did not run: a skipped real-server test is not a passed one."""
    skipped = terminalreporter.stats.get("skipped", [])
    if skipped:
        reasons = sorted({str(report.longrepr[2]) for report in skipped})
        terminalreporter.write_sep("!", f"{len(skipped)} TESTS SKIPPED", red=True, bold=True)
        for reason in reasons:
            terminalreporter.write_line(f"  {reason}", red=True)
        terminalreporter.write_line("  .ci/run (as root) installs what they need.", red=True)
        if in_ci():
            terminalreporter.write_line("  CI=true: a skipped test fails the run.", bold=True)


def in_ci() -> bool:
    """Whether this is CI's run (CI=true), where every test must run."""
    return os.environ.get("CI", "").lower() == "true"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI=true, fail a run that skipped a test: there a skip is a missing part."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped") if reporter is not None else None
    if in_ci() and skipped and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
