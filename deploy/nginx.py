"""Debian's nginx as a front that gzips every type: it holds a stream's bytes in its compressor.

The page must work behind such a front (issue #11): tests/test_nginx.py runs the browsers
through this one. Everything nginx writes (pid, logs, temp files) stays in the work dir.
"""

from __future__ import annotations

import os
from pathlib import Path

from deploy.ports import port_open
from deploy.service import Service

NGINX = os.environ.get("SNAKE_NGINX", "/usr/sbin/nginx")
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")

# One process (master_process off): it never drops to another user, so running as root (CI)
# needs no `user` line and the files in the work dir stay readable. gzip is on for every type
# and, with proxy buffering on, a stream's small writes stay inside deflate (nginx flushes the
# compressor only for unbuffered proxying): the events of an open stream never reach the client.
# The stream's own `X-Accel-Buffering: no` would turn buffering off, so it is ignored, as a
# front that does not know the header would.
CONFIG = """\
master_process off;
daemon off;
pid {workdir}/nginx.pid;
error_log {log} warn;
events {{ worker_connections 1024; }}
http {{
    access_log {workdir}/access.log;
{temp_paths}
    gzip on;
    gzip_types *;
    gzip_min_length 1;
    gzip_proxied any;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass {upstream};
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_ignore_headers X-Accel-Buffering;
            proxy_read_timeout 1h;
        }}
    }}
}}
"""


class Nginx(Service):
    """nginx on 127.0.0.1:port in the foreground, proxying everything to `upstream`."""

    name = "nginx"

    def __init__(self, port: int, upstream: str, workdir: Path, logdir: Path | None = None) -> None:
        super().__init__(workdir, logdir)
        self.port = port
        self.upstream = upstream.rstrip("/")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def conf_path(self) -> Path:
        return self.workdir / "nginx.conf"

    @property
    def access_log(self) -> Path:
        return self.workdir / "access.log"

    def config(self) -> str:
        temp = self.workdir / "temp"
        temp_paths = "\n".join(f"    {kind}_temp_path {temp / kind};" for kind in TEMP_PATHS)
        return CONFIG.format(
            workdir=self.workdir,
            log=self.log_path,
            temp_paths=temp_paths,
            port=self.port,
            upstream=self.upstream,
        )

    def start(self) -> None:
        (self.workdir / "temp").mkdir(parents=True, exist_ok=True)  # nginx makes one level only
        self.conf_path.write_text(self.config())
        # -e: the log before the config is read (Debian's build names stderr; say it anyway).
        self._spawn(
            [NGINX, "-p", f"{self.workdir}/", "-c", str(self.conf_path), "-e", str(self.log_path)]
        )
        self._wait_until(lambda: port_open(self.port), f"listening on {self.port}")
