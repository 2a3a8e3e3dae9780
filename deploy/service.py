"""What every service of the cluster shares: a process in its own session, stopped as a group.

Also the helpers the services use: the open-file limit children get, waiting for a condition
while the process lives, the end of a log, and rendering a config template from deploy/.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import resource
import signal
import string
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

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


def tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:]) or f"({path} is empty)"


def render_template(template: Path, **values: object) -> str:
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
                    f"{self.log_path}:\n{tail(self.log_path)}"
                )
            time.sleep(0.05)
        raise ServiceError(
            f"{self.name}: no {what} after {timeout:.0f}s; {self.log_path}:\n{tail(self.log_path)}"
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
