"""The one command line for each ASGI server: `make run`, the tests, bench/ and the cluster's
workers all start uvicorn, daphne or granian through command(), so their flags cannot drift apart.

    .venv/bin/python -m deploy.serve --server uvicorn --host 127.0.0.1 --port 8000

runs that command in place of itself (exec: the server keeps this process's pid and signals).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

APP = "snake.asgi:application"
SERVERS = ("uvicorn", "daphne", "granian")
# daphne's listen queue is Twisted's 50 by default: a crowd of viewers connecting at once
# overflowed it and waited a 1 s SYN retry (connect p99 1.9 s at 1,000 viewers; 0.56 s with
# 4096). uvicorn gets the same, so that the two compare on their code, not their queues.
BACKLOG = 4096


def _uvicorn(host: str, port: int, backlog: int, fd: int | None) -> list[str]:
    if fd is not None:
        # uvicorn serves --fd instead of host:port, and the callers wait on host:port.
        raise ValueError("uvicorn cannot serve an inherited fd and its own port; use daphne")
    return [
        "-m", "uvicorn", "--host", host, "--port", str(port), "--backlog", str(backlog),
        "--no-access-log", "--lifespan", "off", "--timeout-graceful-shutdown", "2",
    ]  # fmt: skip


def _daphne(host: str, port: int, backlog: int, fd: int | None) -> list[str]:
    # A Twisted endpoint string: a colon in the host (IPv6) would end the field.
    interface = host.replace(":", r"\:")
    argv = ["-m", "daphne", "-e", f"tcp:{port}:interface={interface}:backlog={backlog}"]
    # The fd is already listening: its owner chose the backlog when it called listen().
    return argv if fd is None else [*argv, "--fd", str(fd)]


def _granian(host: str, port: int, backlog: int, fd: int | None) -> list[str]:
    if fd is not None:
        raise ValueError("granian cannot serve an inherited fd; use daphne")
    # asginl: Django answers no lifespan. backpressure defaults to backlog/workers concurrent
    # requests, and every viewer's stream is one that never ends. The asyncio loop is the one
    # `make bench` measured (README).
    return [
        "-m", "granian", "--interface", "asginl", "--host", host, "--port", str(port),
        "--backlog", str(backlog), "--backpressure", "1000000", "--no-ws", "--log-level",
        "warning", "--workers-kill-timeout", "2", "--loop", "asyncio",
    ]  # fmt: skip


def command(
    server: str,
    port: int,
    host: str = "127.0.0.1",
    *,
    app: str = APP,
    fd: int | None = None,
    extra: Sequence[str] = (),
    backlog: int = BACKLOG,
    python: str = sys.executable,
) -> list[str]:
    """Return the argv that runs `server` serving `app` on host:port (and on fd, if given)."""
    build = {"uvicorn": _uvicorn, "daphne": _daphne, "granian": _granian}.get(server)
    if build is None:
        raise ValueError(f"unknown server {server!r}: one of {', '.join(SERVERS)}")
    return [python, *build(host, port, backlog, fd), *extra, app]


def main(args: Sequence[str] | None = None) -> None:
    """Exec the server the command line names."""
    parser = argparse.ArgumentParser(prog="python -m deploy.serve", description=__doc__)
    parser.add_argument("--server", choices=SERVERS, default="uvicorn")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--backlog", type=int, default=BACKLOG)
    parser.add_argument("--app", default=APP)
    opts = parser.parse_args(args)
    argv = command(opts.server, opts.port, opts.host, app=opts.app, backlog=opts.backlog)
    sys.stdout.flush()
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()
