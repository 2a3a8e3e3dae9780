"""snake.handler: Django's views on one thread that keeps its connection, through the ASGI app."""

from __future__ import annotations

import gc
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from tempfile import SpooledTemporaryFile

import httpx
import psycopg
import pytest
from django.core.signals import request_finished, request_started
from django.db import connection
from django.db.backends.signals import connection_created
from django.http import HttpResponse

from deploy.postgres import Postgres
from snake import board
from tests.asgi_client import AsgiClient, on_handler_thread, reset_handler
from tests.guards.test_refusal import SECURITY
from tests.live import Server, free_port

pytestmark = pytest.mark.django_db(transaction=True)
JSON = {"HTTP_ACCEPT": "application/json"}
Seen = list[tuple[int, int, int]]  # per request: thread, raw connection, threads alive


@pytest.fixture
def client() -> Iterator[AsgiClient]:
    yield AsgiClient()
    reset_handler()  # its connection, which pytest-django's teardown does not know of


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Seen:
    """Record, for each read or move of the board, what served it."""
    seen: Seen = []

    def spy(work: Callable) -> Callable:
        def recorded(*args: object) -> object:
            result = work(*args)
            seen.append(
                (threading.get_ident(), id(connection.connection), threading.active_count())
            )
            return result

        return recorded

    monkeypatch.setattr(board, "current", spy(board.current))
    monkeypatch.setattr(board, "move", spy(board.move))
    return seen


def test_one_thread_serves_every_request_with_one_connection(
    client: AsgiClient, served: Seen, slug: str
) -> None:
    client.post(f"/b/{slug}/move", {"direction": "d"})  # the csrftoken cookie; warm
    created: list[object] = []

    def record(sender: object, **kwargs: object) -> None:
        created.append(sender)

    connection_created.connect(record)
    try:
        served.clear()
        for i in range(50):
            if i % 2:
                assert client.get(f"/b/{slug}/state").json()["seq"] == (i + 1) // 2 + 1
            else:
                assert client.post(f"/b/{slug}/move", {"direction": "d"}, **JSON).status_code == 200
    finally:
        connection_created.disconnect(record)
    assert len(served) == 50
    assert {thread for thread, _, _ in served} == {on_handler_thread(threading.get_ident)}
    assert len({raw for _, raw, _ in served}) == 1 and created == []
    assert len({alive for _, _, alive in served}) == 1, "the threads grew"


def test_no_request_signal_is_sent(client: AsgiClient, slug: str) -> None:
    # request_finished's receiver closes the connection the thread keeps (and, on SQLite's
    # in-memory test database, silently does not: only the signal shows the close).
    client.post(f"/b/{slug}/move", {"direction": "d"})  # the csrftoken cookie, from a page
    sent: list[object] = []

    def record(sender: object, **kwargs: object) -> None:
        sent.append(sender)

    request_started.connect(record)
    request_finished.connect(record)
    try:
        client.post(f"/b/{slug}/move", {"direction": "d"})
        client.get(f"/b/{slug}/state")
    finally:
        request_started.disconnect(record)
        request_finished.disconnect(record)
    assert sent == []


@pytest.mark.parametrize("path", ["state", "move"])
def test_a_bad_host_is_refused_by_django_through_the_handler(path: str, slug: str) -> None:
    answer = AsgiClient(True, HTTP_HOST="evil.example").generic("POST", f"/b/{slug}/{path}")
    assert answer.status_code == 400
    assert all(name in answer for name in SECURITY)


def test_a_form_past_djangos_size_limit_is_a_400(client: AsgiClient, slug: str) -> None:
    # /state takes any method; the CSRF check reads a POST's form, and Django refuses a body
    # past DATA_UPLOAD_MAX_MEMORY_SIZE (spooled to disk by the handler meanwhile).
    form = "application/x-www-form-urlencoded"
    big = "a=" + "x" * (3 * 1024 * 1024)
    answer = client.generic("POST", f"/b/{slug}/state", big, form, **JSON)
    assert answer.status_code == 400 and answer.json() == {"error": "bad request"}
    assert all(name in answer for name in SECURITY)


def unbuildable(client: AsgiClient, slug: str) -> tuple[HttpResponse, list[object]]:
    """GET /state with a query string that is not UTF-8: Django cannot build that request.

    Returns the answer and the request bodies left open (collected, or still referenced: by
    the traceback that Django logs, which pytest keeps).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        answer = client.get(f"/b/{slug}/state", QUERY_STRING="a=\xff")
        gc.collect()
    left = [o for o in gc.get_objects() if isinstance(o, SpooledTemporaryFile) and not o.closed]
    for body in left:
        body.close()  # else pytest reports it at some later test's teardown
    return answer, left + [w for w in caught if issubclass(w.category, ResourceWarning)]


def test_a_request_django_cannot_build_is_a_400_and_its_body_closed(
    client: AsgiClient, slug: str
) -> None:
    answer, left_open = unbuildable(client, slug)
    assert answer.status_code == 400
    assert left_open == []


def test_a_request_django_cannot_build_gets_a_pages_security_headers(
    client: AsgiClient, slug: str
) -> None:
    answer, _ = unbuildable(client, slug)
    assert all(name in answer for name in SECURITY)


# Live, on PostgreSQL: a connection the database drops, as a restart does (SQLite's in-memory
# test database ignores close(), so no test in this process can see one replaced).

needs_postgres = pytest.mark.skipif(
    not list(Path("/usr/lib/postgresql").glob("*/bin/postgres")),
    reason="SKIPPED POSTGRESQL TEST: no PostgreSQL (apt-get install postgresql; .ci/run does)",
)
BACKENDS = (
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
    " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
)


@pytest.fixture(scope="module")
def on_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    tmp = tmp_path_factory.mktemp("handler-pg")
    database = Postgres(free_port(), tmp / "pg")
    database.start()
    try:
        server = Server(tmp / "server", env={"DATABASE_URL": database.url}, server="uvicorn")
        server.start()
        yield server, database.url
        server.stop()
    finally:
        database.stop()


def backends(url: str) -> list[int]:
    """The database's client connections, but the one asking."""
    with psycopg.connect(url, autocommit=True) as conn:
        return [pid for (pid,) in conn.execute(BACKENDS).fetchall()]


def drop_connections(url: str) -> list[int]:
    """Drop every client connection to the database, as a restart would; return their pids."""
    with psycopg.connect(url, autocommit=True) as conn:
        sql = f"SELECT pid, pg_terminate_backend(pid) FROM ({BACKENDS}) AS b"
        return [pid for pid, _ in conn.execute(sql).fetchall()]


@needs_postgres
def test_live_one_connection_serves_every_request(on_postgres: tuple[Server, str]) -> None:
    server, url = on_postgres
    seen = []
    with httpx.Client(base_url=server.url) as http:
        for _ in range(20):
            assert http.get("/b/pg/state").status_code == 200
            seen.append(backends(url))
    assert len(seen[0]) == 1 and seen == [seen[0]] * 20, seen


@needs_postgres
def test_live_a_dropped_connection_is_replaced(on_postgres: tuple[Server, str]) -> None:
    server, url = on_postgres
    with httpx.Client(base_url=server.url) as http:
        http.get("/b/pg/state")
        dropped = drop_connections(url)
        http.get("/b/pg/state")  # the one that meets the dropped connection
        assert http.get("/b/pg/state").json()["seq"] == 0
        assert http.get("/b/pg/state").status_code == 200
    (replaced,) = backends(url)
    assert len(dropped) == 1 and replaced not in dropped


@needs_postgres
def test_live_a_dropped_connection_costs_no_500(on_postgres: tuple[Server, str]) -> None:
    server, url = on_postgres
    with httpx.Client(base_url=server.url) as http:
        http.get("/b/pg/state")
        drop_connections(url)
        answer = http.get("/b/pg/state", headers={"Accept": "application/json"})
    assert answer.status_code == 200, answer.text
