"""Pushpin in front of the workers, configured from the templates in deploy/."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

from deploy.ports import port_open
from deploy.service import Service, nofile_limit, render_template

DEPLOY = Path(__file__).resolve().parent

# sun_path holds 108 bytes; Pushpin's longest IPC name is "{rundir}/pushpin-condure-out-stream".
MAX_RUNDIR_LEN = 70


class Pushpin(Service):
    """Debian's Pushpin, with condure, zurl, proxy and handler, configured from deploy/.

    Handler ports: push_in_spec = base_port, GRIP publish (push_in_http_port) = base_port + 1,
    push_in_sub_specs = base_port + 2, command_spec = base_port + 3.
    """

    name = "pushpin"

    def __init__(
        self,
        http_port: int,
        base_port: int,
        workers: list[int],
        sig_key: str,
        workdir: Path,
        *,
        host: str = "127.0.0.1",
        logdir: Path | None = None,
        log_level: str = "2",
        max_open_requests: int = 80,
    ) -> None:
        super().__init__(workdir, logdir)
        self.host = host
        self.log_level = log_level
        self.max_open_requests = max_open_requests
        self.http_port = http_port
        self.base_port = base_port
        self.workers = list(workers)
        self.sig_key = sig_key
        self._tmp_rundir: Path | None = None

    @property
    def push_in_port(self) -> int:
        return self.base_port

    @property
    def publish_port(self) -> int:
        return self.base_port + 1

    @property
    def push_in_sub_port(self) -> int:
        return self.base_port + 2

    @property
    def command_port(self) -> int:
        return self.base_port + 3

    @property
    def ports(self) -> list[int]:
        return [self.http_port, *range(self.base_port, self.base_port + 4)]

    @property
    def local_host(self) -> str:
        """The address a client on this machine reaches the entry at."""
        return "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host

    @property
    def url(self) -> str:
        return f"http://{self.local_host}:{self.http_port}"

    @property
    def publish_url(self) -> str:
        return f"http://127.0.0.1:{self.publish_port}"

    @property
    def stats_spec(self) -> str:
        """The handler's stats socket (pushpin.conf's stats_spec): the workers' GRIP_STATS."""
        return f"ipc://{self._rundir()}/pushpin-stats"

    @property
    def config_path(self) -> Path:
        return self.workdir / "pushpin.conf"

    def _rundir(self) -> Path:
        rundir = self.workdir / "run"
        if len(str(rundir)) <= MAX_RUNDIR_LEN:
            return rundir
        # A ZeroMQ ipc:// path must fit in sun_path (e.g. under a deep pytest tmp_path).
        if self._tmp_rundir is None:
            self._tmp_rundir = Path(f"/tmp/snake-pushpin-{self.http_port}-{secrets.token_hex(4)}")
        return self._tmp_rundir

    def render(self) -> None:
        """Write pushpin.conf and routes into workdir; make a fresh run directory."""
        rundir = self._rundir()
        shutil.rmtree(rundir, ignore_errors=True)  # stale sockets and pid files of a crash
        rundir.mkdir(parents=True)
        self.config_path.write_text(
            render_template(
                DEPLOY / "pushpin.conf",
                rundir=rundir,
                logdir=self.logdir,
                log_level=self.log_level,
                http_host=self.host or "0.0.0.0",
                http_port=self.http_port,
                client_maxconn=max(1000, min(50_000, nofile_limit() - 1000)),
                proxy_max_open_requests=self.max_open_requests,
                sig_key=self.sig_key,
                handler_base=self.base_port,
                push_in_port=self.push_in_port,
                publish_port=self.publish_port,
                push_in_sub_port=self.push_in_sub_port,
                command_port=self.command_port,
            )
        )
        self.config_path.chmod(0o600)  # it holds sig_key
        targets = " ".join(f"127.0.0.1:{port}" for port in self.workers)
        (self.workdir / "routes").write_text(render_template(DEPLOY / "routes", targets=targets))

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.render()
        self._spawn(["pushpin", "--config", str(self.config_path)])
        self._wait_until(
            lambda: port_open(self.http_port, self.local_host), f"listener on {self.url}"
        )
        self._wait_until(lambda: port_open(self.publish_port), f"publish port {self.publish_url}")

    def stop(self, timeout: float = 10) -> None:
        super().stop(timeout)
        if self._tmp_rundir is not None:
            shutil.rmtree(self._tmp_rundir, ignore_errors=True)
            self._tmp_rundir = None
