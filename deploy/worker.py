"""A daphne worker serving snake.asgi, optionally accepting from a socket shared with others."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path

from deploy import serve
from deploy.ports import port_open
from deploy.service import ROOT, Service

VENV_PYTHON = ROOT / ".venv" / "bin" / "python"


class Worker(Service):
    """One daphne serving snake.asgi on 127.0.0.1:port, run from the repository root.

    Started by deploy/serve.py's command(), with `make run`'s flags for daphne.

    shared: a listening socket that several workers accept from, given to daphne as --fd in
    addition to its own port (the Cluster's PORT+9: what Pushpin routes to). Its owner keeps
    it open; each start() passes it again.
    """

    name = "worker"

    def __init__(
        self,
        port: int,
        env: Mapping[str, str],
        workdir: Path,
        *,
        logdir: Path | None = None,
        python: Path | str | None = None,
        shared: socket.socket | None = None,
    ) -> None:
        super().__init__(workdir, logdir)
        self.port = port
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        self.python = str(python or (VENV_PYTHON if VENV_PYTHON.exists() else sys.executable))
        self.shared = shared

    @property
    def log_path(self) -> Path:
        return self.logdir / f"worker-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        fd = None if self.shared is None else self.shared.fileno()
        argv = serve.command("daphne", self.port, fd=fd, python=self.python)
        fds = () if fd is None else (fd,)
        self._spawn(argv, env=self.env, cwd=ROOT, pass_fds=fds)
        self._wait_until(lambda: port_open(self.port), f"listener on {self.url}")
