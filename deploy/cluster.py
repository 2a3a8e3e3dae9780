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
import ctypes
import glob
import os
import pwd
import random
import re
import resource
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType, TracebackType

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = Path(__file__).resolve().parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"

# Offsets from PORT (see the module docstring).
PUSHPIN_BASE_OFFSET = 1  # handler ports PORT+1..PORT+4
REDIS_OFFSET = 5
POSTGRES_OFFSET = 6
SHARED_OFFSET = 9  # the socket every worker accepts from
WORKER_OFFSET = 10

# sun_path holds 108 bytes; Pushpin's longest IPC name is "{rundir}/pushpin-condure-out-stream".
MAX_RUNDIR_LEN = 70
PG_SYSTEM_USER = "snake-pg"
# The Debian package for each binary we run.
PACKAGES = {
    "redis-server": "redis-server",
    "pushpin": "pushpin",
    "condure": "pushpin",
    "zurl": "pushpin",
}

_PR_SET_PDEATHSIG = 1
try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - not Linux
    _LIBC = None


class ServiceError(RuntimeError):
    """A service could not start (the message names it and quotes the end of its log)."""


def nofile_limit() -> int:
    """The open-file limit children get: the hard limit, capped at 1,048,576."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 1 << 20 if hard == resource.RLIM_INFINITY else min(hard, 1 << 20)


def _child_setup() -> None:
    """In each child before exec: raise its open-file limit; die with the launcher."""
    limit = nofile_limit()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < limit:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    if _LIBC is not None:
        # If the launcher is killed without cleaning up, take the services down with it.
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
    except OSError:
        return False
    return True


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on host:port (connections in TIME-WAIT do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port_block(count: int, host: str = "127.0.0.1") -> int:
    """The first of `count` consecutive free ports, below the ephemeral range."""
    low_ephemeral = 32768
    with contextlib.suppress(OSError, ValueError):
        low_ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    top = max(low_ephemeral, 12000) - count
    for _ in range(200):
        base = random.randrange(10000, top)
        if all(port_free(p, host) for p in range(base, base + count)):
            return base
    raise ServiceError(f"no block of {count} free ports found on {host}")


def _group_alive(pgid: int) -> bool:
    """Whether any non-zombie process is left in process group `pgid`."""
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:]) or f"({path} is empty)"


def _render(template: Path, **values: object) -> str:
    return string.Template(template.read_text()).substitute({k: str(v) for k, v in values.items()})


class Service:
    """A process started in its own session, so that stop() ends it and all its children."""

    name = "service"

    def __init__(self, workdir: Path, logdir: Path | None = None) -> None:
        self.workdir = Path(workdir).resolve()
        self.logdir = Path(logdir).resolve() if logdir else self.workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.logdir / f"{self.name}.log"

    def _spawn(
        self,
        argv: list[str],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        pass_fds: tuple[int, ...] = (),
    ) -> None:
        self.logdir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"--- {time.strftime('%F %T')} {' '.join(argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                argv,
                cwd=cwd or self.workdir,
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_child_setup,
                pass_fds=pass_fds,
            )

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _wait_until(self, ready: Callable[[], bool], what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise ServiceError(
                    f"{self.name} exited with {self.proc.returncode} before {what}; "
                    f"{self.log_path}:\n{_tail(self.log_path)}"
                )
            time.sleep(0.05)
        raise ServiceError(
            f"{self.name}: no {what} after {timeout:.0f}s; {self.log_path}:\n{_tail(self.log_path)}"
        )

    def terminate(self) -> None:
        """SIGTERM the process group without waiting (stop() waits)."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM the whole process group, then SIGKILL what is left after `timeout`."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        pgid = proc.pid  # start_new_session: the child leads its own group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (proc.poll() is None or _group_alive(pgid)):
            time.sleep(0.05)
        if proc.poll() is None or _group_alive(pgid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        proc.wait()


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
            _render(
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
        (self.workdir / "routes").write_text(_render(DEPLOY / "routes", targets=targets))

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


def _pg_bindir() -> Path:
    found = glob.glob("/usr/lib/postgresql/*/bin/postgres")
    if not found:
        raise ServiceError(
            "PostgreSQL not found in /usr/lib/postgresql/*/bin: apt-get install postgresql"
        )

    def version(path: str) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", Path(path).parent.parent.name))

    return Path(max(found, key=version)).parent


class Postgres(Service):
    """A throwaway PostgreSQL cluster on 127.0.0.1:port, trust auth, data under workdir.

    Created fresh on every start(); no Unix socket. PostgreSQL refuses to run as root, so as
    root the server runs as the system user `snake-pg` (created when missing). When that user
    cannot reach workdir (e.g. a pytest tmp_path under /tmp/pytest-of-root, mode 0700), the
    data goes to a /tmp/snake-postgres-* directory instead, removed by stop().
    """

    name = "postgres"

    def __init__(
        self,
        port: int,
        workdir: Path,
        *,
        logdir: Path | None = None,
        user: str = "snake",
        db: str = "snake",
    ) -> None:
        super().__init__(workdir, logdir)
        self.port = port
        self.user = user
        self.db = db
        self.datadir = self.workdir / "data"
        self._bindir: Path | None = None
        self._tmp_datadir: Path | None = None

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.db}"

    @property
    def bindir(self) -> Path:
        if self._bindir is None:
            self._bindir = _pg_bindir()
        return self._bindir

    def _as_owner(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        return ["runuser", "-u", PG_SYSTEM_USER, "--", *argv]

    def _run(self, argv: list[str], what: str) -> None:
        with open(self.log_path, "ab") as log:
            log.write(f"--- {time.strftime('%F %T')} {' '.join(argv)}\n".encode())
            log.flush()
            result = subprocess.run(
                argv, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, check=False,
            )  # fmt: skip
        if result.returncode != 0:
            raise ServiceError(f"postgres: {what} failed; {self.log_path}:\n{_tail(self.log_path)}")

    @staticmethod
    def _ensure_system_user() -> None:
        with contextlib.suppress(KeyError):
            pwd.getpwnam(PG_SYSTEM_USER)
            return
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home",
             "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", PG_SYSTEM_USER],
            check=True,
        )  # fmt: skip

    def _data_parent(self) -> Path:
        """A directory the server's user can write: workdir, or else a fresh one in /tmp."""
        if os.geteuid() != 0:
            return self.workdir
        self._ensure_system_user()
        shutil.chown(self.workdir, PG_SYSTEM_USER, PG_SYSTEM_USER)
        reachable = subprocess.run(
            self._as_owner(["test", "-w", str(self.workdir)]), check=False
        ).returncode
        if reachable == 0:
            return self.workdir
        self._tmp_datadir = Path(tempfile.mkdtemp(prefix=f"snake-postgres-{self.port}-"))
        shutil.chown(self._tmp_datadir, PG_SYSTEM_USER, PG_SYSTEM_USER)
        return self._tmp_datadir

    def start(self) -> None:
        bindir = self.bindir
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir.mkdir(parents=True)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.datadir = self._data_parent() / "data"
        self._run(
            self._as_owner([str(bindir / "initdb"), "-D", str(self.datadir), "-U", self.user,
                            "--auth=trust", "-E", "UTF8", "--locale=C"]),
            f"initdb (as {PG_SYSTEM_USER if os.geteuid() == 0 else 'this user'}: can it write "
            f"{self.workdir}?)",
        )  # fmt: skip
        with open(self.datadir / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# deploy/cluster.py: loopback TCP only, no Unix socket, throwaway data\n"
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                "unix_socket_directories = ''\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "max_connections = 200\n"
            )
        # No -l: the server keeps writing to pg_ctl's stdout, our log file, opened here (its
        # directory need not be reachable by the server's user).
        self._run(
            self._as_owner([str(bindir / "pg_ctl"), "start", "-D", str(self.datadir),
                            "-w", "-t", "60"]),
            "pg_ctl start",
        )  # fmt: skip
        self._run(
            [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
             self.db],
            "createdb",
        )  # fmt: skip

    def running(self) -> bool:
        try:
            pid = int((self.datadir / "postmaster.pid").read_text().split()[0])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            return False
        return True

    def stop(self, timeout: float = 30) -> None:
        try:
            if (self.datadir / "postmaster.pid").exists():
                argv = [str(self.bindir / "pg_ctl"), "stop", "-D", str(self.datadir),
                        "-m", "fast", "-w", "-t", str(int(timeout))]  # fmt: skip
                self._run(self._as_owner(argv), "pg_ctl stop")
        finally:
            if self._tmp_datadir is not None:
                shutil.rmtree(self._tmp_datadir, ignore_errors=True)
                self._tmp_datadir = None


class Worker(Service):
    """One daphne serving snake.asgi on 127.0.0.1:port, run from the repository root.

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
        argv = [self.python, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port)]
        fds: tuple[int, ...] = ()
        if self.shared is not None:
            fds = (self.shared.fileno(),)
            argv += ["--fd", str(fds[0])]
        self._spawn([*argv, "snake.asgi:application"], env=self.env, cwd=ROOT, pass_fds=fds)
        self._wait_until(lambda: port_open(self.port), f"listener on {self.url}")


def listening_socket(port: int, host: str = "127.0.0.1") -> socket.socket:
    """A TCP socket listening on host:port with the longest accept queue the kernel allows."""
    backlog = 4096
    with contextlib.suppress(OSError, ValueError):
        backlog = int(Path("/proc/sys/net/core/somaxconn").read_text())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


class Cluster:
    """Pushpin + daphne workers + Redis (+ PostgreSQL) for snake; see the module docstring.

    database_url: given, the workers use it; else with postgres=True a throwaway PostgreSQL
    is started; else the default SQLite file in var_dir, shared by all workers.
    var_dir: the workers' SNAKE_VAR_DIR (dev SECRET_KEY, SQLite), shared; default var/.
    workdir: configs, data and logs of this cluster; default var/cluster/<port>/.
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
        self.workdir = Path(workdir or ROOT / "var" / "cluster" / str(port)).resolve()
        self.logdir = self.workdir / "logs"
        self.var_dir = Path(var_dir or ROOT / "var").resolve()
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
            raise ServiceError(f"manage.py migrate failed; {log}:\n{_tail(log)}")

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
            f"{self.logdir}; {worker_log}:\n{_tail(worker_log, 12)}"
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
        cluster = Cluster(host, port, workers, database_url, postgres=postgres)
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
                            f"everything; {service.log_path}:\n{_tail(service.log_path)}",
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
