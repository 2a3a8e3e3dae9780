"""deploy/serve.py, the one way to start a server: what the servers really listen with, the
cluster worker's inherited fd, its command line as `make run` uses it, and no other copy."""

from __future__ import annotations

import signal
import socket
import struct
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from deploy import serve
from deploy.ports import listening_socket
from deploy.worker import Worker
from tests.live import ROOT, Player, Server, free_port, wait_for_port
from tests.sse import SSEClient

SOMAXCONN = int(Path("/proc/sys/net/core/somaxconn").read_text())
# The kernel caps every listen queue at somaxconn.
SHARED_QUEUE = min(serve.BACKLOG, SOMAXCONN)
# What only a server's own command line would hold: a second copy of the flags.
SERVER_FLAGS = (
    "--backlog", "backlog=", "--no-access-log", "--lifespan", "--timeout-graceful-shutdown",
    "snake.asgi:application", "-m uvicorn", "-m daphne", '"-m", "uvicorn"', '"-m", "daphne"',
    "bin)/uvicorn", "bin)/daphne", "interface=", "-m granian", '"-m", "granian"', "--backpressure",
)  # fmt: skip


def listeners(port: int) -> list[tuple[str, int]]:
    """(address, accept queue limit) of each IPv4 TCP listener on port, asked of sock_diag."""
    sock_diag_by_family, request_dump, tcp_listen = 20, 0x301, 10
    # inet_diag_req_v2: family, protocol, no extensions, the LISTEN state; a zero sockid.
    req = struct.pack("=BBBxI", socket.AF_INET, socket.IPPROTO_TCP, 0, 1 << tcp_listen)
    req += bytes(48)
    header = struct.pack("=IHHII", 16 + len(req), sock_diag_by_family, request_dump, 1, 0)
    found = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 4) as netlink:  # NETLINK_SOCK_DIAG
        netlink.sendall(header + req)
        while True:
            data, offset = netlink.recv(1 << 16), 0
            while offset < len(data):
                length, kind = struct.unpack_from("=IH", data, offset)
                if kind in (2, 3):  # NLMSG_ERROR, NLMSG_DONE
                    return found
                # inet_diag_msg: 4 bytes, then the sockid (sport, dport, src, ...), then
                # expires, rqueue, wqueue: for a listener, wqueue is its queue limit.
                msg = offset + 16
                (sport,) = struct.unpack_from("!H", data, msg + 4)
                (limit,) = struct.unpack_from("=I", data, msg + 60)
                if sport == port:
                    found.append((socket.inet_ntoa(data[msg + 8 : msg + 12]), limit))
                offset += (length + 3) & ~3


def test_both_servers_listen_on_loopback_only_with_the_shared_queue(server: Server) -> None:
    # Twisted's default is 50, uvicorn's 2048: either would show here.
    assert listeners(server.port) == [("127.0.0.1", SHARED_QUEUE)]


def test_a_worker_serves_the_shared_socket_and_its_own_port(tmp_path: Path) -> None:
    env = Server(tmp_path).env  # migrated; never started
    shared = listening_socket(free_port())
    worker = Worker(free_port(), env, tmp_path / "worker", shared=shared)
    try:
        worker.start()
        for port in (shared.getsockname()[1], worker.port):
            assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200
        assert listeners(worker.port) == [("127.0.0.1", SHARED_QUEUE)]
    finally:
        worker.stop()
        shared.close()


def test_only_daphne_takes_an_inherited_fd() -> None:
    argv = serve.command("daphne", 8001, fd=7, python="py")
    assert argv[:4] == ["py", "-m", "daphne", "-e"]
    assert argv[-3:] == ["--fd", "7", serve.APP]
    for other in ("uvicorn", "granian"):
        with pytest.raises(ValueError, match="daphne"):
            serve.command(other, 8001, fd=7)
    with pytest.raises(ValueError, match="unknown server"):
        serve.command("gunicorn", 8001)


@pytest.mark.parametrize("kind", serve.SERVERS)
def test_the_command_line_execs_the_server_with_its_backlog(tmp_path: Path, kind: str) -> None:
    env, port = Server(tmp_path).env, free_port()
    argv = ["-m", "deploy.serve", "--server", kind, "--port", str(port), "--backlog", "128"]
    with open(tmp_path / "serve.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        wait_for_port(port, proc)
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200
        assert listeners(port) == [("127.0.0.1", min(128, SOMAXCONN))]
        # exec: the pid started is the server's, so Ctrl-C and SIGTERM reach it directly.
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("kind", serve.SERVERS)
def test_every_server_streams_every_move(tmp_path: Path, kind: str) -> None:
    # granian's send returns an awaitable that is no coroutine: a viewer that stepped it as one
    # got its opening and never another event.
    server = Server(tmp_path, server=kind)
    server.start()
    viewer = SSEClient(server.url, "/b/every/events/")
    try:
        viewer.wait_seq(0)
        with Player(server.url) as player:
            for direction in "dsda":
                assert player.move("every", direction).status_code == 200
        assert viewer.wait_seq(4)["seq"] == 4
        seqs = [position["seq"] for position in viewer.positions()]
        assert seqs == sorted(set(seqs)) and seqs[0] == 0, seqs
    finally:
        viewer.close()
        server.stop()


@pytest.mark.parametrize("kind", serve.SERVERS)
def test_make_run_starts_the_server_through_deploy_serve(kind: str) -> None:
    variables = [f"SERVER={kind}", "HOST=::1", "PORT=8123", "BACKLOG=77"]
    dry = subprocess.run(
        ["make", "-n", "run", *variables], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    call = f"-m deploy.serve --server '{kind}' --host '::1' --port '8123' --backlog '77'"
    assert call in " ".join(dry.replace("\\\n", " ").split()), dry
    default = subprocess.run(["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True)
    assert [flag for flag in SERVER_FLAGS if flag in default.stdout] == [], default.stdout


@pytest.mark.parametrize("path", ["tests/live.py", "bench/servers.py", "deploy/worker.py"])
def test_no_other_module_builds_a_server_command_line(path: str) -> None:
    text = (ROOT / path).read_text()
    assert [flag for flag in SERVER_FLAGS if flag in text] == []
    assert "serve.command(" in text
