"""Debian's squid as a corporate proxy: what snake must get through where websockets are blocked.

A corporate proxy lets the web through and little else. It tunnels CONNECT only to port 443, so
that it cannot be turned into a relay to any other service (mail, SSH, an intranet port); it
forwards no `Upgrade`, because once a connection is upgraded the proxy sees no more requests to
log, filter or scan; it caches nothing (here, so that every request reaches the server and
squid's access log names each one); and it serves its own network only. Chromium sends every
websocket through such a proxy as a CONNECT tunnel, refused unless the port is 443, while plain
HTTP requests, a server-sent events stream among them, are forwarded.
"""

from __future__ import annotations

import os
import pwd
import socket
import stat
from pathlib import Path

from deploy.ports import port_open
from deploy.service import Service, ServiceError

SQUID = "/usr/sbin/squid"
# Debian's build drops to this user when started as root (--with-default-user=proxy).
USER = "proxy"

# The tests' own rule comes second: the proxy reaches this machine only (dstdomain compares the
# URL's host as written, no DNS), so Chromium's own requests to Google go nowhere.
RULES = """\
acl SSL_ports port 443
acl loopback dstdomain 127.0.0.1
http_access deny CONNECT !SSL_ports
http_access deny !loopback
http_access allow localhost
http_access deny all
http_upgrade_request_protocols WebSocket deny all
http_upgrade_request_protocols OTHER deny all
cache deny all
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Squid(Service):
    """squid on 127.0.0.1:port (a free one unless given) with RULES, everything in workdir.

    Started as root, squid writes its logs as USER: workdir is handed to USER, and every
    directory above it must let others through (a pytest tmp_path does not: use /tmp).
    """

    name = "squid"

    def __init__(self, workdir: Path, port: int = 0, logdir: Path | None = None) -> None:
        super().__init__(workdir, logdir)
        self.port = port or free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.workdir / "squid.conf"

    @property
    def access_log(self) -> Path:
        return self.workdir / "access.log"

    def config(self) -> str:
        where = self.workdir
        return (
            f"http_port 127.0.0.1:{self.port}\n{RULES}"
            f"pid_filename {where / 'squid.pid'}\n"
            f"access_log stdio:{self.access_log}\n"
            f"cache_log {where / 'cache.log'}\n"
            f"coredump_dir {where}\n"
            # Each request's line is in the log as soon as it ends: the tests read it.
            "buffered_logs off\n"
            # squid waits 30 s for open connections (a stream never ends) before it exits.
            "shutdown_lifetime 1 seconds\n"
            # Its name in error pages and Via: the default asks DNS for this machine's.
            "visible_hostname snake-squid\n"
        )

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            self._hand_workdir_to(USER)
        self.config_path.write_text(self.config())
        # -N: stay in the foreground, one process, so that stop() ends it.
        self._spawn([SQUID, "-N", "-f", str(self.config_path)])
        self._wait_until(lambda: port_open(self.port), f"listener on {self.url}")

    def _hand_workdir_to(self, user: str) -> None:
        entry = pwd.getpwnam(user)
        os.chown(self.workdir, entry.pw_uid, entry.pw_gid)
        for parent in self.workdir.parents:
            if not parent.stat().st_mode & stat.S_IXOTH:
                raise ServiceError(
                    f"squid runs as {user} and cannot enter {parent} on its way to "
                    f"{self.workdir}: give squid a work dir under /tmp"
                )
