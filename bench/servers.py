"""The servers bench/run.py compares, each started fresh and stopped on exit.

    uvicorn     one uvicorn as `make run` starts it, own SQLite and SNAKE_VAR_DIR under var/bench/
    daphne      the same with daphne (`SERVER=daphne make run`)
    granian     the same with granian (`SERVER=granian make run`)
    cluster     `make cluster`'s topology: Pushpin + 2 daphne workers + Redis (deploy.cluster)
    floor       bench/floor.py, snake's contract on bare asyncio
    writefloor  bench/writefloor.py: the floor with each move committed to SQLite before its
                answer, fan-outs coalesced (the burst rows' yardstick)
    asgifloor   bench/asgi_floor.py, a bare ASGI app on the same uvicorn as `make run`: what the
                server's own per-send cost leaves of the floor
    tutorial    bench/tutorial.py on daphne: the original tutorial's design (a Channels consumer
                per websocket, one group per board, group_send per move, InMemoryChannelLayer);
                its viewers are websockets (registered in bench.viewers.WEBSOCKET_URLS)

Each context manager yields a Target: the URL to load and the PIDs whose RSS and threads count
as "the server" (for the cluster: the workers and Pushpin's processes, found by session).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench import viewers
from bench.fanout import free_port
from deploy import serve

ROOT = Path(__file__).resolve().parent.parent
BENCH_VAR = ROOT / "var" / "bench"
PYTHON = ROOT / ".venv" / "bin" / "python"
# make bench's; STARTERS has one more, asked for by name: "quiet", presence's A/B (bench/quiet.py)
KINDS = ("uvicorn", "daphne", "granian", "cluster", "floor", "writefloor", "asgifloor", "tutorial")
# bench.run --burst's default
BURST_KINDS = ("uvicorn", "daphne", "granian", "cluster", "floor", "writefloor")
# The tutorial's daphne: pings only after 10 idle minutes (the C viewers never answer one).
TUTORIAL_PINGS = ("--ping-interval", "600", "--ping-timeout", "600")
CLUSTER_BINARIES = ("pushpin", "condure", "zurl", "redis-server")


@dataclass
class Target:
    kind: str
    url: str
    pids: list[int]
    # pid -> process name, for the JSON: which processes the figures sum over
    names: dict[int, str] = field(default_factory=dict)
    # bench.storm's: kill the server and start it again at once on the same port (pids follow)
    restart: Callable[[], None] | None = None


class Unavailable(RuntimeError):
    """This configuration cannot run here (the message says why, in one line)."""


def unavailable(kind: str) -> str | None:
    """Why `kind` cannot run on this machine, or None."""
    if kind == "cluster":
        missing = [b for b in CLUSTER_BINARIES if shutil.which(b) is None]
        if missing:
            return f"{', '.join(missing)} not on PATH (apt-get install pushpin redis-server)"
    if kind in (*serve.SERVERS, "tutorial", "asgifloor", "quiet") and not PYTHON.exists():
        return f"{PYTHON} missing (make run creates it)"
    return None


def comm(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/comm").read_text().strip()
    return "?"


def session_pids(sids: list[int]) -> list[int]:
    """Every live process in one of the sessions sids (Pushpin's children lead their own
    process groups, but stay in the session the cluster started Pushpin in)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            # pid (comm) state ppid pgrp session ...: comm may hold spaces; split after ')'
            if int(stat.rpartition(")")[2].split()[3]) in sids:
                found.append(int(entry.name))
    return sorted(found)


def wait_ok(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """GET url until it answers 200 (the app is loaded and warm)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Unavailable(f"server exited with {proc.returncode} before answering {url}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=5).status_code == 200:
                return
        time.sleep(0.1)
    raise Unavailable(f"no 200 from {url} within {timeout:.0f} s")


def fresh_dir(name: str) -> Path:
    path = BENCH_VAR / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group proc leads, SIGKILL it after 15 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def server_pids(proc: subprocess.Popen[bytes], count: int = 1, timeout: float = 10) -> list[int]:
    """proc and the workers it forks (granian serves from a child process), once there are
    `count` of them or after timeout."""
    deadline = time.monotonic() + timeout
    while len(pids := session_pids([proc.pid])) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return pids


Spawn = Callable[[], subprocess.Popen[bytes]]


def respawn(target: Target, procs: list[subprocess.Popen[bytes]], spawn: Spawn) -> None:
    """Give target a restart(): SIGKILL the newest of procs' group and spawn it again at once,
    as a supervisor does after a crash (no graceful shutdown: every stream drops together)."""

    def restart() -> None:
        count = len(target.pids)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(procs[-1].pid, signal.SIGKILL)
        procs[-1].wait()
        procs.append(spawn())
        target.pids[:] = server_pids(procs[-1], count)
        target.names.update({pid: comm(pid) for pid in target.pids})

    target.restart = restart


def spawner(argv: list[str], log: Path, env: dict[str, str]) -> Spawn:
    """Start argv in a session of its own, output appended to log."""

    def spawn() -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:
            return subprocess.Popen(
                argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    return spawn


@contextlib.contextmanager
def embedded(
    tag: str, kind: str = "uvicorn", server: str | None = None, app: str = serve.APP
) -> Iterator[Target]:
    """`make run`: migrate, then one uvicorn (or daphne, granian) process on a free port."""
    from deploy.cluster import NO_LIMITS  # the one name it needs from deploy

    var = fresh_dir(f"{kind}-{tag}")
    env = {**os.environ, "SNAKE_VAR_DIR": str(var), "DATABASE_URL": f"sqlite:///{var}/db.sqlite3"}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(NO_LIMITS)  # every viewer and move of the bench comes from 127.0.0.1
    with open(var / "server.log", "ab") as log:
        subprocess.run(
            [str(PYTHON), "manage.py", "migrate", "--noinput"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, check=True,
        )  # fmt: skip
    port = free_port()
    # `make run` (uvicorn) and `SERVER=daphne make run`: the same app, another server.
    argv = serve.command(server or kind, port, app=app, python=str(PYTHON))
    spawn = spawner(argv, var / "server.log", env)
    procs = [spawn()]
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ok(url + "/", procs[0])
        pids = server_pids(procs[0])
        target = Target(kind, url, pids, {pid: comm(pid) for pid in pids})
        respawn(target, procs, spawn)
        yield target
    finally:
        stop(procs[-1])


@contextlib.contextmanager
def cluster(tag: str) -> Iterator[Target]:
    """`make cluster` on free ports: Pushpin in front of 2 workers, Redis between them."""
    from deploy.cluster import NO_LIMITS, Cluster  # only this configuration needs Cluster

    base = fresh_dir(f"cluster-{tag}")
    with Cluster(
        port=0, workers=2, workdir=base / "cluster", var_dir=base / "var", env=NO_LIMITS
    ) as c:
        leaders = [w.proc.pid for w in c.workers if w.proc is not None]
        if c.pushpin.proc is not None:
            leaders.append(c.pushpin.proc.pid)
        pids = session_pids(leaders)
        url = c.url.rstrip("/")
        target = Target("cluster", url, pids, {pid: comm(pid) for pid in pids})

        def restart() -> None:
            # Pushpin, not the workers: it holds every stream, so only its restart drops them
            # all. SIGTERM: a SIGKILL would reach its launcher alone, whose children keep the
            # ports (each leads its own group).
            c.pushpin.stop()
            c.pushpin.start()
            assert c.pushpin.proc is not None
            target.pids[:] = session_pids([*leaders[:-1], c.pushpin.proc.pid])
            target.names.update({pid: comm(pid) for pid in target.pids})

        target.restart = restart
        yield target


def floor(tag: str) -> contextlib.AbstractContextManager[Target]:
    """bench/floor.py on a free port."""
    port = free_port()
    return process("floor", tag, [sys.executable, "-m", "bench.floor", "--port", str(port)], port)


@contextlib.contextmanager
def process(kind: str, tag: str, argv: list[str], port: int) -> Iterator[Target]:
    """Run argv (a server on 127.0.0.1:port) from a fresh var/bench/<kind>-<tag>/ until exit."""
    var = fresh_dir(f"{kind}-{tag}")
    spawn = spawner(argv, var / "server.log", {**os.environ, "PYTHONUNBUFFERED": "1"})
    procs = [spawn()]
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ok(url + "/", procs[0])
        target = Target(kind, url, [procs[0].pid], {procs[0].pid: comm(procs[0].pid)})
        respawn(target, procs, spawn)
        yield target
    finally:
        stop(procs[-1])


def writefloor(tag: str) -> contextlib.AbstractContextManager[Target]:
    """bench/writefloor.py on a free port, its SQLite file in var/bench/writefloor-<tag>/."""
    port, db = (
        free_port(),
        BENCH_VAR / f"writefloor-{tag}" / "db.sqlite3",
    )  # process() makes the dir
    argv = [sys.executable, "-m", "bench.writefloor", "--port", str(port), "--db", str(db)]
    return process("writefloor", tag, argv, port)


def asgifloor(tag: str) -> contextlib.AbstractContextManager[Target]:
    """bench/asgi_floor.py on one uvicorn, started as `make run` starts snake."""
    port = free_port()
    argv = serve.command("uvicorn", port, app="bench.asgi_floor:application", python=str(PYTHON))
    return process("asgifloor", tag, argv, port)


@contextlib.contextmanager
def tutorial(tag: str) -> Iterator[Target]:
    """bench/tutorial.py on one fresh daphne process; its viewers are websockets."""
    port = free_port()
    argv = serve.command(
        "daphne", port, app="bench.tutorial:application", extra=TUTORIAL_PINGS, python=str(PYTHON)
    )
    with process("tutorial", tag, argv, port) as target:
        viewers.WEBSOCKET_URLS.add(target.url)
        try:
            yield target
        finally:
            viewers.WEBSOCKET_URLS.discard(target.url)


STARTERS = {
    "uvicorn": embedded,
    "daphne": functools.partial(embedded, kind="daphne"),
    "granian": functools.partial(embedded, kind="granian"),
    "quiet": functools.partial(
        embedded, kind="quiet", server="uvicorn", app="bench.quiet:application"
    ),
    "cluster": cluster,
    "floor": floor,
    "writefloor": writefloor,
    "asgifloor": asgifloor,
    "tutorial": tutorial,
}
