"""bench/sse_fanout.c from Python: build it, start N SSE viewers of one board, drive it.

The helper's control protocol (one line each way) is described at the top of sse_fanout.c:
READY once every viewer has its first event, MARK/WAIT per move, DONE for the summary.

Viewers are SSE streams of `/b/<slug>/events/`, or websockets of `/ws/b/<slug>/` (the helper's
-W) with websocket=True, or by default when the base URL is in WEBSOCKET_URLS (bench/servers.py
registers the websocket-only configurations there, so bench.fanout and bench.burst need not know).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
SOURCE = Path(__file__).with_name("sse_fanout.c")
HEADER = Path(__file__).with_name("loadgen.h")  # what every C helper includes
BINARY = ROOT / "var" / "bench" / "sse_fanout"
# Base URLs (as passed to Viewers) of servers whose viewers are websockets rather than SSE.
WEBSOCKET_URLS: set[str] = set()


class FanoutError(SystemExit):
    """A measurement could not be made (a SystemExit, so the CLI prints just the message)."""


def build(source: Path = SOURCE, binary: Path = BINARY) -> Path:
    """Compile a C helper of the bench unless its binary is newer than its source and the
    header the helpers share."""
    newest = max(source.stat().st_mtime, HEADER.stat().st_mtime)
    if not binary.exists() or binary.stat().st_mtime < newest:
        binary.parent.mkdir(parents=True, exist_ok=True)
        cmd = ["gcc", "-O2", "-Wall", "-Wextra", "-o", str(binary), str(source)]
        subprocess.run(cmd, check=True)
    return binary


def loopback_address(url: str) -> tuple[str, int]:
    """(host, port) of an http://127.0.0.x:PORT URL: the helper takes an IPv4 address."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 80
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is None or ip.version != 4 or not ip.is_loopback:
        raise FanoutError("--url must be http://127.0.0.x:PORT (the helper takes an IPv4 address)")
    return host, port


class Viewers:
    """A running sse_fanout: `viewers` streams of board `slug`, timing moves base+1..base+moves."""

    def __init__(
        self,
        url: str,
        slug: str,
        viewers: int,
        moves: int,
        *,
        inflight: int = 256,
        ready_timeout: float = 120,
        wait_timeout: float = 10,
        websocket: bool | None = None,
    ) -> None:
        host, port = loopback_address(url)
        cmd = [str(build()), "-h", host, "-p", str(port), "-s", slug, "-n", str(viewers)]
        cmd += ["-m", str(moves), "-c", str(inflight)]
        cmd += ["-t", str(ready_timeout), "-w", str(wait_timeout)]
        if websocket if websocket is not None else url.rstrip("/") in WEBSOCKET_URLS:
            cmd.append("-W")
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in, self._out = self.proc.stdin, self.proc.stdout

    def expect(self, word: str) -> list[str]:
        line = self._out.readline()
        if not line.startswith(word + " "):
            raise FanoutError(f"sse_fanout: expected {word}, got {line!r}")
        return line.split()[1:]

    def tell(self, line: str) -> None:
        self._in.write(line + "\n")
        self._in.flush()

    def ready(self) -> tuple[int, int, int]:
        """Block until READY: (connected, errors, base seq)."""
        connected, errors, base = (int(v) for v in self.expect("READY"))
        return connected, errors, base

    def mark(self, seq: int, t_ns: int) -> None:
        self.tell(f"MARK {seq} {t_ns}")

    def wait(self, seq: int) -> tuple[int, int, int]:
        """Until every live viewer is at or past seq (or the wait timeout): (reached, live,
        CLOCK_MONOTONIC ns when the last of the viewers reached got the seq it is at)."""
        self.tell(f"WAIT {seq}")
        _, reached, live, t_ns = (int(v) for v in self.expect("REACHED"))
        return reached, live, t_ns

    def done(self, final_seq: int) -> dict[str, Any]:
        """Final wait for final_seq, then the helper's JSON summary; the helper exits."""
        self.tell(f"DONE {final_seq}")
        summary: dict[str, Any] = json.loads(self._out.readline())
        self.proc.wait(timeout=10)
        return summary

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self._in, self._out):
            with contextlib.suppress(OSError):
                stream.close()

    def __enter__(self) -> Viewers:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
