"""The event stream outside Django's request handler, against a real daphne."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx

from tests.sse import SSEClient

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


def test_a_viewer_that_stops_reading_holds_up_no_one(server, player, slug) -> None:
    # A client that sends the request and then never reads a byte, with a small window.
    silent = socket.socket()
    silent.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    silent.connect(("127.0.0.1", server.port))
    silent.sendall(f"GET /b/{slug}/events/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    viewer = SSEClient(server.url, f"/b/{slug}/events/")
    try:
        for n in range(300):
            assert player.move(slug, "da"[n % 2]).status_code == 200
        seen = viewer.wait_seq(300)
        assert seen["seq"] == 300 == player.state(slug)["seq"]
        seqs = [p["seq"] for p in viewer.positions()]
        assert seqs == sorted(set(seqs))
    finally:
        viewer.close()
        silent.close()
