"""The event stream outside Django's request handler, against a real daphne."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import httpx
from django.test import override_settings

from snake import stream
from snake.guards import streamcap
from snake.stream import hub
from snake.stream.consumers import StreamConsumer
from tests.sse import SSEClient
from tests.stream.conftest import counts
from tests.stream.counter import Counter, fragment
from tests.stream.test_hub import stuck_connection

SECURITY = ("X-Content-Type-Options", "Referrer-Policy", "Cross-Origin-Opener-Policy",
            "X-Frame-Options")  # fmt: skip


def threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


def test_the_stream_carries_the_same_security_headers_as_pages(server, slug) -> None:
    page = httpx.get(f"{server.url}/b/{slug}/")
    viewer = SSEClient(server.url, f"/b/{slug}/events/")
    try:
        assert viewer.status == 200
        for name in SECURITY:
            assert viewer.headers[name] == page.headers[name], name
    finally:
        viewer.close()


def test_other_methods_and_unknown_hosts_are_refused(server, slug) -> None:
    url = f"{server.url}/b/{slug}/events/"
    wrong_method = httpx.post(url)
    wrong_host = httpx.get(url, headers={"Host": "evil.example"})
    assert (wrong_method.status_code, wrong_host.status_code) == (405, 400)
    for refused in (wrong_method, wrong_host):
        assert "default-src 'self'" in refused.headers["Content-Security-Policy"]
        assert refused.headers["X-Content-Type-Options"] == "nosniff"


def test_viewers_cost_no_thread_each(server, slug) -> None:
    before = threads(server.proc.pid)
    viewers = [SSEClient(server.url, f"/b/{slug}/events/") for _ in range(40)]
    try:
        for viewer in viewers:
            viewer.wait_for(lambda ps: len(ps) >= 1)
        assert threads(server.proc.pid) - before < 10
    finally:
        for viewer in viewers:
            viewer.close()


def big(n: int) -> str:
    """Count n with 512 KB of padding: forty of them overfill the kernel's buffers (4 MB here)."""
    return fragment("count", n) + "<!--\n" + ("x" * 1023 + "\n") * 512 + "-->"


def test_a_client_that_stops_reading_holds_up_no_one_and_is_dropped(
    engine: str, counter: Counter, settings: object
) -> None:
    settings.SNAKE_STUCK_VIEWER_SECONDS = 1  # type: ignore[attr-defined]
    port = int(engine.rsplit(":", 1)[1])
    # A client that sends the request and then never reads a byte, with a small window.
    silent = socket.socket()
    silent.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    silent.connect(("127.0.0.1", port))
    silent.sendall(b"GET /count/silent/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    reader = SSEClient(engine, "/count/silent/")
    try:
        reader.wait_for(lambda _: "stream-open" in [e.type for e in reader.events])
        room = hub._rooms["count-silent"]
        # Both in the room before the megabytes: a silent client that joined after them would
        # get a small opening and only small events, which its buffers could take for long.
        deadline = time.monotonic() + 30
        while len(room.viewers) < 2 or not all(v.open for v in tuple(room.viewers)):
            assert time.monotonic() < deadline, "the silent client's stream never opened"
            time.sleep(0.01)
        n = 0
        for n in range(1, 41):  # 20 MB; stored first, as an owner does, for overflow re-reads
            counter.set("count-silent", "count", n)
            stream.send("count-silent", "count", n, big(n))
            # Each its own fan-out: a burst would be coalesced to its newest, and the few
            # megabytes left could fit the kernel's buffers.
            seen = until_count(reader, n)
        assert seen == sorted(set(seen)) and seen[-1] == 40
        # Stuck for over a second, it is dropped at the next event: the server closes it.
        deadline = time.monotonic() + 30
        while len(room.viewers) > 1 and time.monotonic() < deadline:
            n = counter.bump("count-silent")
            time.sleep(0.2)
        assert len(room.viewers) == 1, "the silent viewer was never dropped"
        assert until_count(reader, n)[-1] == n
        assert closed_by_server(silent)
    finally:
        reader.close()
        silent.close()


def until_count(viewer: SSEClient, n: int) -> list[int]:
    deadline = time.monotonic() + 30
    while True:
        seen = counts([e.data for e in viewer.events if e.type == "count"])
        if seen and seen[-1] >= n:
            return seen
        assert time.monotonic() < deadline, f"stream stopped at {seen[-1:]}"
        time.sleep(0.01)


def closed_by_server(sock: socket.socket) -> bool:
    """Read what is left; True once the server has closed or reset the connection."""
    sock.settimeout(15)
    try:
        while sock.recv(1 << 16):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def test_a_stream_dropped_where_its_socket_is_out_of_reach_ends_so_the_server_closes_it(
    counter: Counter, settings: object
) -> None:
    """On a server whose transport we cannot see (granian), a drop ends the app: not cancelled,
    no error, so the server closes the unfinished response and the client reconnects."""
    settings.SNAKE_STUCK_VIEWER_SECONDS = 0.3  # type: ignore[attr-defined]

    async def run() -> tuple[asyncio.Future[None], int]:
        listening, transport, writer = await stuck_connection()  # its buffers fill, stay full
        requested = asyncio.Event()

        async def receive() -> dict[str, object]:
            if not requested.is_set():
                requested.set()
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.Event().wait()  # the client is there, only not reading
            raise AssertionError("unreachable")

        async def send(message: dict[str, object]) -> None:  # a server we know nothing of
            if message["type"] == "http.response.body":
                await writer.send(message)

        scope = {
            "type": "http", "method": "GET", "path": "/count/gone/", "client": ("127.0.0.1", 1),
            "headers": [(b"host", b"127.0.0.1")],
            "url_route": {"args": (), "kwargs": {"name": "gone"}},
        }  # fmt: skip
        app = StreamConsumer.as_asgi("count-{name}")
        served = asyncio.ensure_future(app(scope, receive, send))  # type: ignore[arg-type]

        def feed() -> int:
            n = 0
            while not served.done() and n < 50_000:
                n += 1
                stream.send("count-gone", "count", n, big(n) if n < 40 else fragment("count", n))
                time.sleep(0.001)
            return n

        n = await asyncio.to_thread(feed)
        await asyncio.wait_for(served, 30)
        transport.close()
        listening.close()
        return served, n

    served, n = asyncio.run(run())
    assert n < 50_000, "the stuck stream was never dropped"
    assert not served.cancelled() and served.exception() is None
    assert "count-gone" not in hub._rooms  # it left its room: nothing of it is kept


def refused(scope: dict) -> tuple[int, bytes]:
    """Serve one stream request that the consumer refuses; return its status and body."""
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    async def receive() -> dict:
        raise AssertionError("a refusal reads nothing")

    base = {"type": "http", "method": "GET", "path": "/c/events/", "client": ("203.0.113.9", 1)}
    headers = [(b"host", b"localhost"), (b"accept-language", b"es")]
    scope = {**base, "headers": headers, "url_route": {"args": (), "kwargs": {}}, **scope}
    asyncio.run(StreamConsumer.as_asgi("c").serve(scope, receive, send))
    return sent[0]["status"], sent[1]["body"]


@override_settings(SNAKE_MAX_STREAMS_PER_IP=1)
def test_the_consumers_refusals_speak_the_clients_language() -> None:
    assert refused({"method": "POST"}) == (
        405,
        "método no permitido: pide el flujo con GET\n".encode(),
    )
    status, error = refused({"headers": [(b"host", b"evil.example"), (b"accept-language", b"es")]})
    assert (status, error) == (
        400,
        "solicitud incorrecta: el host no está en ALLOWED_HOSTS\n".encode(),
    )
    slot = streamcap.acquire_address("203.0.113.9")
    try:
        status, error = refused({})
    finally:
        assert slot is not None
        slot.release()
    assert status == 429 and error.decode().startswith("Demasiados flujos de eventos")
