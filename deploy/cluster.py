"""snake as a multi-process cluster on one machine: Pushpin in front, daphne workers behind it,
Redis between the workers, and (when asked) a throwaway PostgreSQL.

    make cluster                          # HOST, PORT, WORKERS, DATABASE_URL, POSTGRES honoured
    PORT=18000 WORKERS=4 .venv/bin/python -m deploy.cluster

::

    browser ──▶ Pushpin :PORT (condure ─▶ proxy ─▶ zurl) ──▶ :PORT+9 ──▶ daphne workers
                  ▲ holds every event stream (GRIP)         (shared)     │ publish each move
                  └──────────── GRIP publish :PORT+2 ◀───────────────────┤
                                                       Redis :PORT+5 ◀───┘ (between workers)

Port plan: every port is derived from PORT. All listen on 127.0.0.1, except Pushpin's entry,
which listens on HOST (127.0.0.1 by default).

    PORT          Pushpin's HTTP entry (condure): the URL to open
    PORT+1        Pushpin handler push_in_spec (ZeroMQ PULL; Pushpin's default 5560)
    PORT+2        Pushpin handler push_in_http_port: GRIP publish/control, the workers' GRIP_URL
    PORT+3        Pushpin handler push_in_sub_specs (ZeroMQ SUB; default 5562)
    PORT+4        Pushpin handler command_spec (ZeroMQ REP; default 5563)
    PORT+5        Redis
    PORT+6        PostgreSQL (only with postgres=True, i.e. POSTGRES=1)
    PORT+7..+8    reserved
    PORT+9        the socket every worker accepts from: what Pushpin routes to
    PORT+10+i     daphne worker i's own port, for i < WORKERS (Pushpin's fallback targets)

A cluster takes PORT..PORT+10+WORKERS-1, so clusters whose PORTs are at least 10+WORKERS apart
never collide (PORT=18000 and PORT=19000 are independent). PORT=0 picks a free block below the
kernel's ephemeral port range. Everything else a cluster owns (Pushpin's ZeroMQ IPC sockets,
configs, pid files, logs, Redis and PostgreSQL data) lives under its own directory,
var/cluster/<PORT>/ by default, logs in its logs/ directory.

From a pytest fixture::

    with Cluster(port=0, workers=2, workdir=tmp / "cluster", var_dir=tmp / "var") as c:
        httpx.get(c.url)                  # through Pushpin; c.publish_url, c.redis_url, ...

Every service class also works alone: ``start()``, ``stop()``, ``url``/ports, ``log_path``.
Each runs in its own session; stop() ends its whole process group. If the launcher itself is
killed outright, its services get SIGTERM from the kernel (PR_SET_PDEATHSIG), except PostgreSQL,
which pg_ctl detaches.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import FrameType, TracebackType

from deploy.ports import free_port_block, listening_socket, port_free, port_open
from deploy.postgres import PG_SYSTEM_USER, Postgres
from deploy.pushpin import DEPLOY, MAX_RUNDIR_LEN, Pushpin
from deploy.redis import Redis
from deploy.service import ROOT, Service, ServiceError, nofile_limit, tail
from deploy.worker import VENV_PYTHON, Worker

# Every public name deploy/cluster.py defined before it was split up is still importable from it.
__all__ = [
    "DEPLOY",
    "MAX_RUNDIR_LEN",
    "NO_LIMITS",
    "PACKAGES",
    "PG_SYSTEM_USER",
    "POSTGRES_OFFSET",
    "PUSHPIN_BASE_OFFSET",
    "REDIS_OFFSET",
    "ROOT",
    "SHARED_OFFSET",
    "VENV_PYTHON",
    "WORKER_OFFSET",
    "Cluster",
    "Postgres",
    "Pushpin",
    "Redis",
    "Service",
    "ServiceError",
    "Worker",
    "free_port_block",
    "listening_socket",
    "main",
    "missing_binaries",
    "nofile_limit",
    "port_free",
    "port_open",
]

# Offsets from PORT (see the module docstring).
PUSHPIN_BASE_OFFSET = 1  # handler ports PORT+1..PORT+4
REDIS_OFFSET = 5
POSTGRES_OFFSET = 6
SHARED_OFFSET = 9  # the socket every worker accepts from
WORKER_OFFSET = 10

# The abuse limits off (snake/ratelimit.py, snake/streamcap.py): for the tests and the bench,
# which fire many moves and streams from one address. `make cluster` keeps the defaults on.
NO_LIMITS = {"SNAKE_MOVES_PER_SECOND": "0", "SNAKE_MAX_STREAMS_PER_IP": "0"}

# The Debian package for each binary we run.
PACKAGES = {
    "redis-server": "redis-server",
    "pushpin": "pushpin",
    "condure": "pushpin",
    "zurl": "pushpin",
}


class Cluster:
    """Pushpin + daphne workers + Redis (+ PostgreSQL) for snake; see the module docstring.

    database_url: given, the workers use it; else with postgres=True a throwaway PostgreSQL
    is started; else the default SQLite file in var_dir, shared by all workers.
    var_dir: the workers' SNAKE_VAR_DIR (dev SECRET_KEY, SQLite), shared; default var/.
    workdir: configs, data and logs of this cluster; default <var_dir>/cluster/<port>/.
    env: extra environment for the workers (and migrate).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8000,
        workers: int = 2,
        database_url: str | None = None,
        workdir: Path | None = None,
        *,
        postgres: bool = False,
        var_dir: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if database_url and postgres:
            raise ValueError("give database_url or postgres=True, not both")
        if port == 0:
            port = free_port_block(WORKER_OFFSET + workers)
        if not 1 <= port <= 65535 - WORKER_OFFSET - workers:
            raise ValueError(
                f"PORT {port} leaves no room for PORT..PORT+{WORKER_OFFSET + workers - 1}"
            )
        self.host = host
        self.port = port
        self.var_dir = Path(var_dir or ROOT / "var").resolve()
        self.workdir = Path(workdir or self.var_dir / "cluster" / str(port)).resolve()
        self.logdir = self.workdir / "logs"
        self.sig_key = secrets.token_urlsafe(32)
        self.shared_port = port + SHARED_OFFSET
        self.worker_ports = [port + WORKER_OFFSET + i for i in range(workers)]

        self.postgres = (
            Postgres(port + POSTGRES_OFFSET, self.workdir / "postgres", logdir=self.logdir)
            if postgres
            else None
        )
        if self.postgres is not None:
            self.database_url = self.postgres.url
        else:
            self.database_url = database_url or f"sqlite:///{self.var_dir / 'db.sqlite3'}"
        self.redis = Redis(port + REDIS_OFFSET, self.workdir / "redis", logdir=self.logdir)
        self.pushpin = Pushpin(
            port,
            port + PUSHPIN_BASE_OFFSET,
            # The shared socket first; the workers' own ports after it, tried only when it
            # refuses (Pushpin tries a route's targets in order: failover, not balancing).
            [self.shared_port, *self.worker_ports],
            self.sig_key,
            self.workdir / "pushpin",
            host=host,
            logdir=self.logdir,
        )
        self.env = {
            "HOST": host,
            "REDIS_URL": self.redis.url,
            "GRIP_URL": self.pushpin.publish_url,
            "GRIP_SIG_KEY": self.sig_key,
            "GRIP_STATS": self.pushpin.stats_spec,
            "SNAKE_TRUSTED_PROXIES": "127.0.0.1,::1",
            "DATABASE_URL": self.database_url,
            "SNAKE_VAR_DIR": str(self.var_dir),
            **(env or {}),
        }
        self.workers = [
            Worker(p, self.env, self.workdir, logdir=self.logdir) for p in self.worker_ports
        ]
        self._started: list[Service] = []
        self._shared: socket.socket | None = None

    @property
    def url(self) -> str:
        return self.pushpin.url + "/"

    @property
    def publish_url(self) -> str:
        return self.pushpin.publish_url

    @property
    def redis_url(self) -> str:
        return self.redis.url

    @property
    def services(self) -> list[Service]:
        head: list[Service] = [self.postgres] if self.postgres else []
        return [*head, self.redis, self.pushpin, *self.workers]

    def ports(self) -> list[int]:
        planned = [*self.pushpin.ports, self.redis.port, self.shared_port, *self.worker_ports]
        return planned + ([self.postgres.port] if self.postgres else [])

    def _check_ports(self) -> None:
        busy = [p for p in self.ports() if not port_free(p)]
        if self.host not in ("", "127.0.0.1", "0.0.0.0") and not port_free(self.port, self.host):
            busy.append(self.port)
        if busy:
            raise ServiceError(
                f"ports in use on 127.0.0.1: {', '.join(map(str, sorted(set(busy))))} "
                f"(another cluster? this one needs {self.port}..{max(self.ports())}; "
                "choose another PORT, or PORT=0)"
            )

    def migrate(self) -> None:
        log = self.logdir / "migrate.log"
        env = {**os.environ, **self.env}
        python = self.workers[0].python
        with open(log, "ab") as out:
            result = subprocess.run(
                [python, "manage.py", "migrate", "--noinput"],
                cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, check=False,
            )  # fmt: skip
        if result.returncode != 0:
            raise ServiceError(f"manage.py migrate failed; {log}:\n{tail(log)}")

    def _wait_through_proxy(self, timeout: float = 30) -> None:
        """GET / through Pushpin until a worker answers it (the whole chain is up)."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                with opener.open(self.url, timeout=5) as response:
                    if response.status == 200:
                        return
                    last = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                with exc:  # it holds the connection open
                    last = f"HTTP {exc.code}: {exc.read(200)!r}"
            except OSError as exc:
                last = str(exc)
            time.sleep(0.2)
        worker_log = self.workers[0].log_path
        raise ServiceError(
            f"GET {self.url} through Pushpin never answered 200 (last: {last}); logs in "
            f"{self.logdir}; {worker_log}:\n{tail(worker_log, 12)}"
        )

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self._check_ports()
        if self.postgres is not None:
            self._started.append(self.postgres)
            self.postgres.start()
        for service in (self.redis, self.pushpin):
            self._started.append(service)
            service.start()
        self.migrate()
        # One listening socket shared by every worker: the kernel's accept queue spreads the
        # proxy's connections over whichever workers are free, and its backlog (somaxconn,
        # not Twisted's 50) absorbs a connect storm. The cluster keeps it open until stop(),
        # so a worker restarted with stop()/start() rejoins it and connections wait for it.
        self._shared = listening_socket(self.shared_port)
        for worker in self.workers:
            worker.shared = self._shared
            self._started.append(worker)
            worker.start()
        self._wait_through_proxy()

    def stop(self) -> None:
        """Stop everything started, in reverse order; every stop is tried even if one fails."""
        errors: list[BaseException] = []
        for worker in self.workers:  # all workers wind down at once; stop() below waits
            if worker in self._started:
                worker.terminate()
        while self._started:
            service = self._started.pop()
            try:
                service.stop()
            except Exception as exc:  # reported after the rest are stopped
                errors.append(exc)
            if self._shared is not None and not any(w in self._started for w in self.workers):
                self._shared.close()
                self._shared = None
        if errors:
            raise ServiceError("; ".join(f"{type(e).__name__}: {e}" for e in errors))

    def grip_check(self, timeout: float = 5) -> bool:
        """Whether Pushpin holds an event stream itself (GRIP) rather than relaying a worker's.

        Opens one stream through Pushpin and reads how the proxy logged it: "accept" when a
        worker answered with GRIP instructions. Without GRIP each viewer keeps a worker busy
        and at most Pushpin(max_open_requests) of them stream at once.
        """
        token = secrets.token_hex(8)
        path = f"/b/main/events/?cluster-probe={token}"
        log = self.logdir / "pushpin-proxy.log"
        host = self.pushpin.local_host
        with socket.create_connection((host, self.port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{self.port}\r\n\r\n".encode())
            with contextlib.suppress(OSError):
                s.recv(4096)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                for line in log.read_text(errors="replace").splitlines():
                    if token in line:
                        return line.rstrip().endswith(" accept")
            time.sleep(0.1)
        return False

    def dead(self) -> list[Service]:
        """Services started that are no longer running."""
        return [s for s in self._started if not s.running()]

    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            with contextlib.suppress(Exception):  # the start error is the one to see
                self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _Stop(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _on_signal(signum: int, frame: FrameType | None) -> None:
    # Stop once: a second Ctrl-C must not interrupt the shutdown itself.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    raise _Stop(signum)


def missing_binaries(postgres: bool = False) -> list[str]:
    """One line per Debian package to install, naming the programs missing from PATH."""
    missing: dict[str, list[str]] = {}
    for binary, package in PACKAGES.items():
        if shutil.which(binary) is None:
            missing.setdefault(package, []).append(binary)
    lines = [
        f"{', '.join(binaries)} not found: apt-get install {package}"
        for package, binaries in missing.items()
    ]
    if postgres and not glob.glob("/usr/lib/postgresql/*/bin/postgres"):
        lines.append("/usr/lib/postgresql/*/bin/postgres not found: apt-get install postgresql")
    return lines


def _relative(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd())) + "/"
    return str(path) + "/"


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name) or str(default)
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a whole number") from None


def main() -> int:
    try:
        host = os.environ.get("HOST") or "127.0.0.1"
        port = _env_int("PORT", 8000)
        workers = _env_int("WORKERS", 2)
        database_url = os.environ.get("DATABASE_URL") or None
        postgres = os.environ.get("POSTGRES", "") not in ("", "0")
        var_dir = Path(os.environ["SNAKE_VAR_DIR"]) if os.environ.get("SNAKE_VAR_DIR") else None
        cluster = Cluster(host, port, workers, database_url, postgres=postgres, var_dir=var_dir)
    except (ValueError, ServiceError) as exc:
        print(f"snake cluster: {exc}", file=sys.stderr)
        return 2
    missing = missing_binaries(postgres)
    if missing:
        print("snake cluster: cannot start:", *missing, sep="\n  ", file=sys.stderr)
        return 1
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    print(
        f"snake cluster: starting on {cluster.url} (logs: {_relative(cluster.logdir)})", flush=True
    )
    try:
        with cluster:
            print(
                f"snake cluster: open {cluster.url} (Ctrl-C stops everything)\n"
                f"  pushpin   {cluster.pushpin.url} -> workers on 127.0.0.1:{cluster.shared_port} "
                f"(own ports {', '.join(map(str, cluster.worker_ports))}); "
                f"GRIP publish {cluster.publish_url}\n"
                f"  redis     {cluster.redis_url}\n"
                f"  database  {cluster.database_url}\n"
                f"  logs      {_relative(cluster.logdir)}",
                flush=True,
            )
            if not cluster.grip_check():
                print(
                    "snake cluster: WARNING: event streams are not held by Pushpin (no GRIP "
                    "answer from the workers: GRIP_URL/GRIP_SIG_KEY not honoured?); each viewer "
                    f"occupies a worker and at most {cluster.pushpin.max_open_requests} stream "
                    "at once",
                    file=sys.stderr,
                    flush=True,
                )
            while True:
                time.sleep(1)
                dead = cluster.dead()
                if dead:
                    for service in dead:
                        code = service.proc.returncode if service.proc else "?"
                        print(
                            f"snake cluster: {service.log_path.stem} exited ({code}), stopping "
                            f"everything; {service.log_path}:\n{tail(service.log_path)}",
                            file=sys.stderr,
                        )
                    return 1
    except _Stop as stop:
        print(f"snake cluster: {stop}, stopped everything", flush=True)
        return 0
    except ServiceError as exc:
        print(f"snake cluster: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
