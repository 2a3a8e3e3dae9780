"""Faults for real (issue #5): server restarts under open browsers, SIGTERM with open streams,
a Pushpin restart under viewers, repeated Redis outages; and bench/soak.py itself.

Already covered elsewhere, not repeated here: a worker restarted behind Pushpin keeps its
viewers (test_cluster), the position survives a restart (test_live), one Redis outage on two
direct workers (test_fanout) and through Pushpin (test_cluster), a dead GRIP proxy
(test_fanout).
"""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests import test_browser
from tests.browser import needs_chromium, streaming
from tests.live import ROOT, Player, Server
from tests.sse import SSEClient

logo_at = test_browser.logo_at
# Counts the SSE extension's opens and errors in each page, from before htmx loads.
COUNT_SSE = """
window.sseOpens = 0; window.sseErrors = [];
document.addEventListener("htmx:sseOpen", () => { window.sseOpens += 1; });
document.addEventListener("htmx:sseError",
    (e) => { window.sseErrors.push(e.detail.source.readyState); });
"""


# uvicorn re-raises the signal once it has shut down; daphne exits 0.
EXIT_ON_SIGTERM = {"daphne": 0, "uvicorn": -signal.SIGTERM}
# What each server logs when it ends the requests still open at shutdown (the streams):
# daphne at once (counting finished requests it has not reaped yet), uvicorn once its
# --timeout-graceful-shutdown (deploy/serve.py) has run out.
ENDED_OPEN = {
    "daphne": re.compile(r"Killed (\d+) pending application instances"),
    "uvicorn": re.compile(r"Cancel (\d+) running task\(s\), timeout graceful shutdown exceeded"),
}


def sigterm(server: Server, timeout: float = 15) -> None:
    """SIGTERM the server and check that it exits by itself, as it should on SIGTERM."""
    server.proc.send_signal(signal.SIGTERM)
    try:
        returncode = server.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{server.kind} still running {timeout} s after SIGTERM") from None
    assert returncode == EXIT_ON_SIGTERM[server.kind], f"exit status {returncode}"
    server.stop()  # closes the log; the process is gone already


# -- 1. a server restart under two open browsers ------------------------------------------


@needs_chromium
@pytest.mark.browser
@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
def test_browsers_reconnect_by_themselves_after_a_server_restart(
    browser, tmp_path: Path, kind: str, slug: str
) -> None:
    server = Server(tmp_path, server=kind)  # its port stays the same across restarts
    server.start()
    pages = []
    try:
        for _ in range(2):
            context = browser.new_context()
            context.add_init_script(COUNT_SSE)
            pages.append(context.new_page())
            pages[-1].goto(f"{server.url}/b/{slug}/")
            streaming(pages[-1])
        one, two = pages
        logo_at(two, 500, 150, 0)
        one.keyboard.press("d")
        for page in pages:
            logo_at(page, 505, 150, 1)

        sigterm(server)
        # Down longer than the browser's 3 s reconnect delay: it finds the port refusing at
        # least once, and must keep trying (seen: 4 refused tries over an 8 s outage).
        time.sleep(4)
        server.start()  # same port, same SQLite file, same SECRET_KEY (the CSRF cookie holds)
        # A move while the pages are still away: each stream's opening must bring it.
        with Player(server.url) as player:
            assert player.move(slug, "s").json()["seq"] == 2
        for page in pages:
            # The browser's own reconnect, not a reload: the same page opens a second stream.
            page.wait_for_function("window.sseOpens >= 2", timeout=30_000)
            logo_at(page, 505, 155, 2)

        two.keyboard.press("a")
        with Player(server.url) as player:
            state = player.board(slug)
        assert state == {"slug": slug, "x": 500, "y": 155, "seq": 3}
        for page in pages:
            logo_at(page, state["x"], state["y"], state["seq"])
        seen = [
            page.eval_on_selector("#logo", "e => [e.dataset.seq, e.dataset.x, e.dataset.y]")
            for page in pages
        ]
        assert seen == [[str(state[k]) for k in ("seq", "x", "y")]] * 2
        # A refused connection leaves the EventSource CONNECTING (0), retrying every 3 s; it
        # was never given up (CLOSED = 2, which only an HTTP error or a wrong content type
        # causes), so the extension's own backoff, up to 64 s, never started. No `retry:` is
        # needed in the stream for a restart to heal within seconds.
        for page in pages:
            assert 2 not in page.evaluate("window.sseErrors")
    finally:
        for page in pages:
            page.context.close()
        server.stop()


# -- 2. SIGTERM with open streams ---------------------------------------------------------


def raw_stream(url: str, slug: str) -> socket.socket:
    """A bare socket on the stream, read up to its first position."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(f"GET /b/{slug}/events/ HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    seen = b""
    while b"data-seq" not in seen:
        chunk = sock.recv(65536)
        assert chunk, f"stream ended before its first position: {seen[:200]!r}"
        seen += chunk
    return sock


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
def test_sigterm_ends_open_streams_cleanly_and_the_next_process_serves_the_state(
    tmp_path: Path, kind: str, slug: str
) -> None:
    server = Server(tmp_path, server=kind)
    server.start()
    viewers: list[SSEClient] = []
    try:
        viewers = [SSEClient(server.url, f"/b/{slug}/events/") for _ in range(3)]
        raw = raw_stream(server.url, slug)
        with Player(server.url) as player:
            assert player.move(slug, "d").json()["seq"] == 1
        for viewer in viewers:
            assert viewer.wait_seq(1) == {"x": 505, "y": 150, "seq": 1}

        sigterm(server)
        # The four streams were still open when the signal came, and the server ended them:
        # not the clients, nor a stream that had died already.
        ended = ENDED_OPEN[kind].findall(server.logs())
        assert ended and int(ended[-1]) >= 4, server.logs()[-2000:]
        for viewer in viewers:
            viewer._reader.join(5)
            assert viewer.closed, "the stream hung after the server exited"
            # A FIN, not a reset (neither server sends the body's last chunk on SIGTERM).
            assert not viewer.reset, viewer.error
            # It ended between events: the last one arrived whole.
            assert bytes(viewer.raw).endswith(b"\n\n")
        # An orderly close (FIN), not a reset: the client reads to the end.
        raw.settimeout(5)
        with raw:
            while raw.recv(65536):
                pass

        server.start()
        with Player(server.url) as player:
            again = SSEClient(server.url, f"/b/{slug}/events/")
            viewers.append(again)
            # The new process has never seen an event: the state comes from the database.
            assert again.wait_for(bool)[0] == {"x": 505, "y": 150, "seq": 1}
            assert player.move(slug, "s").json()["seq"] == 2
            assert again.wait_seq(2) == {"x": 505, "y": 155, "seq": 2}
    finally:
        for viewer in viewers:
            viewer.close()
        server.stop()


# -- 3. Pushpin restarted, Redis down twice (the make cluster topology) ------------------
# On the session's `cluster` (tests/conftest.py): each test starts again what it stops.


class Reconnecting:
    """An SSE viewer that reopens its stream whenever it ends or fails, as EventSource does."""

    def __init__(self, base_url: str, path: str, retry: float = 0.5) -> None:
        self.base_url, self.path, self.retry = base_url, path, retry
        self.streams: list[SSEClient] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                stream = SSEClient(self.base_url, self.path)
            except (OSError, http.client.HTTPException):
                self.failures += 1
                self._stop.wait(self.retry)
                continue
            self.streams.append(stream)
            if stream.status != 200:
                self.failures += 1
            while not stream.closed and stream.status == 200 and not self._stop.is_set():
                time.sleep(0.05)
            stream.close()
            self._stop.wait(self.retry)

    def wait_seq(self, seq: int, timeout: float = 30) -> dict[str, int]:
        """The newest position once the current stream has reached seq."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.streams[-1].positions() if self.streams else []
            if found and found[-1]["seq"] >= seq:
                return found[-1]
            time.sleep(0.05)
        raise AssertionError(f"no seq {seq} after {timeout}s; {self.streams[-1:]}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for stream in self.streams:
            stream.close()


def test_viewers_reconnect_through_a_restarted_pushpin_and_converge(cluster, slug) -> None:
    watching = [Reconnecting(cluster.url, f"/b/{slug}/events/") for _ in range(4)]
    front = Player(cluster.pushpin.url)
    try:
        assert front.move(slug, "d").json()["seq"] == 1
        for viewer in watching:
            assert viewer.wait_seq(1) == {"x": 505, "y": 150, "seq": 1}

        cluster.pushpin.stop()
        # Moves go on on the workers while the proxy is away; its viewers miss them.
        for seq, worker in enumerate(cluster.workers, start=2):
            with Player(worker.url) as player:
                assert player.move(slug, "s").json()["seq"] == seq
        cluster.pushpin.start()

        # Every viewer's stream ended and it reopened one: the opening brings seq 3.
        for viewer in watching:
            assert viewer.wait_seq(3) == {"x": 505, "y": 160, "seq": 3}
            assert len(viewer.streams) >= 2
        with Player(cluster.pushpin.url) as again:
            for direction in "dds":
                again.move(slug, direction)
            final = again.board(slug)
        assert final == {"slug": slug, "x": 515, "y": 165, "seq": 6}
        for viewer in watching:
            assert viewer.wait_seq(6) == {"x": 515, "y": 165, "seq": 6}
            seqs = [p["seq"] for p in viewer.streams[-1].positions()]
            assert seqs == sorted(set(seqs)), "an older state after a newer one"
    finally:
        front.close()
        for viewer in watching:
            viewer.close()


def count_in_logs(cluster, text: str) -> list[int]:
    return [w.log_path.read_text(errors="replace").count(text) for w in cluster.workers]


def test_each_redis_outage_is_logged_once_per_worker_and_moves_never_fail(cluster, slug) -> None:
    """test_fanout covers one outage on two direct workers, test_cluster one through Pushpin;
    this adds what neither says: every outage (not just the first) is logged exactly once per
    worker, however many moves and listener reconnect attempts it spans, and ends with exactly
    one "back"; moves on both workers and through Pushpin answer 200 throughout; cross-worker
    fan-out resumes after each outage."""
    down, back = count_in_logs(cluster, "Redis is down"), count_in_logs(cluster, "Redis is back")
    # A direct viewer on each worker, so that each has a Redis listener (which logs "back").
    on_a, on_b = (SSEClient(w.url, f"/b/{slug}/events/") for w in cluster.workers)
    players = [Player(w.url) for w in (*cluster.workers, cluster.pushpin)]
    seq = 0

    def move_everywhere() -> None:
        nonlocal seq
        for player in players:
            seq += 1
            answer = player.move(slug, "sw"[seq % 2])
            assert answer.status_code == 200, answer.text[:200]
            assert answer.json()["seq"] == seq

    try:
        on_a.wait_for(bool)
        on_b.wait_for(bool)
        for outage in (1, 2):
            cluster.redis.stop()
            move_everywhere()
            # Past the listeners' 5 s reconnect cap: each fails to reconnect several times.
            time.sleep(6)
            move_everywhere()
            assert count_in_logs(cluster, "Redis is down") == [n + outage for n in down]
            cluster.redis.start()
            deadline = time.monotonic() + 30
            while count_in_logs(cluster, "Redis is back") != [n + outage for n in back]:
                assert time.monotonic() < deadline, count_in_logs(cluster, "Redis is back")
                time.sleep(0.2)
            # Without a restart, each worker's moves reach the other's own viewers again.
            for player, viewer in ((players[1], on_a), (players[0], on_b)):
                seq += 1
                assert player.move(slug, "d").json()["seq"] == seq
                assert viewer.wait_seq(seq)["seq"] == seq
        assert count_in_logs(cluster, "Redis is down") == [n + 2 for n in down]
        assert count_in_logs(cluster, "Redis is back") == [n + 2 for n in back]
    finally:
        if not cluster.redis.running():
            cluster.redis.start()
        for client in (on_a, on_b, *players):
            client.close()


# -- 4. bench/soak.py, briefly ------------------------------------------------------------


def test_soak_runs_and_passes_its_own_checks_briefly(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--server", "uvicorn", "--seconds", "15",
         "--viewers", "40", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(out.read_text())
    assert set(summary["checks"]) == {
        "rss_stable", "no_thread_leak", "no_fd_leak", "viewers_on_final_state", "no_errors"
    }  # fmt: skip
    assert summary["viewers_on_final"] == summary["viewers_at_end"] > 0
    assert summary["counts"]["opened"] > 40  # viewers came and went
    assert len(summary["samples"]) >= 10
    assert "viewers at the end on the final state" in done.stdout
