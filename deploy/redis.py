"""Redis between the workers: redis-server on a loopback port, nothing written to disk."""

from __future__ import annotations

import socket
from pathlib import Path

from deploy.service import Service


class Redis(Service):
    """redis-server on 127.0.0.1:port, without persistence (nothing is written to disk)."""

    name = "redis"

    def __init__(self, port: int, workdir: Path, logdir: Path | None = None) -> None:
        super().__init__(workdir, logdir)
        self.port = port

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._spawn(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
             "--save", "", "--appendonly", "no", "--daemonize", "no",
             "--dir", str(self.workdir), "--logfile", ""]
        )  # fmt: skip
        self._wait_until(self.ping, "answer to PING")
