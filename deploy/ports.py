"""Loopback ports: whether one is open or free, a free block of them, a listening socket."""

from __future__ import annotations

import contextlib
import random
import socket
from pathlib import Path

from deploy.service import ServiceError


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
