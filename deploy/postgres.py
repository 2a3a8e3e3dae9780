"""A throwaway PostgreSQL for the cluster (POSTGRES=1), created fresh on every start."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from deploy.service import Service, ServiceError, tail

PG_SYSTEM_USER = "snake-pg"


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
            raise ServiceError(f"postgres: {what} failed; {self.log_path}:\n{tail(self.log_path)}")

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
