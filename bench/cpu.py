"""CPU per request: what a running server's processes spend on each kind of request.

    .venv/bin/python -m bench.run --cpu [--cpu-kinds uvicorn,daphne] [--requests 1000]

For each kind (GET state, GET page, POST move with a JSON answer, GET a static file) one
keep-alive httpx.Client sends `warmup` requests, then `requests` more one after another; the
server's CPU is utime+stime summed over its pids (/proc/<pid>/stat) before and after, divided by
the count. So that a disturbed run shows, each figure comes with the CPU every other process on
the machine used meanwhile: /proc/stat's busy time minus the server's and this client's own.
"""

from __future__ import annotations

import secrets
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx

from bench.procstat import TICK, Sample, others_core_pct

KINDS = ("state", "page", "move", "static")
LABELS = {
    "state": "GET /b/<slug>/state",
    "page": "GET /b/<slug>/ (page)",
    "move": "POST /b/<slug>/move (JSON)",
    "static": "GET /static/snake/board.css",
}
WARMUP = 20
FIGURES = ("server_ms", "wall_ms", "others_core_pct", "client_ms")


class CpuError(RuntimeError):
    """A request of the measurement did not get the answer it must."""


def figures(before: Sample, after: Sample, count: int) -> dict[str, float]:
    """ms per request of the server, the client and the wall; others as % of one core."""
    server, client = after.server - before.server, after.client - before.client
    wall = after.t - before.t
    return {
        "server_ms": server / TICK * 1e3 / count,
        "client_ms": client / TICK * 1e3 / count,
        "wall_ms": wall * 1e3 / count,
        "others_core_pct": others_core_pct(before, after),
    }


def sender(client: httpx.Client, kind: str, slug: str) -> Callable[[int], httpx.Response]:
    """The i-th request of a kind; moves alternate d/a so that every one is applied."""
    if kind == "move":
        token = client.cookies.get("csrftoken")
        if not token:
            raise CpuError(f"GET /b/{slug}/ set no csrftoken cookie")
        headers = {"X-CSRFToken": token, "Accept": "application/json"}
        return lambda i: client.post(
            f"/b/{slug}/move", data={"direction": "da"[i % 2]}, headers=headers
        )
    path = {"state": f"/b/{slug}/state", "page": f"/b/{slug}/", "static": "/static/snake/board.css"}
    return lambda i, path=path[kind]: client.get(path)


def checked(response: httpx.Response) -> httpx.Response:
    if response.status_code != 200:
        raise CpuError(f"{response.request.method} {response.request.url.path}: "
                       f"{response.status_code} {response.text[:200]!r}")  # fmt: skip
    return response


def measure(
    url: str, pids: list[int], requests: int = 1000, warmup: int = WARMUP
) -> dict[str, Any]:
    """One round on a running server: {kind: figures} for every kind, on a fresh board."""
    slug = f"cpu-{time.strftime('%H%M%S')}-{secrets.token_hex(4)}"
    out: dict[str, Any] = {"slug": slug, "requests": requests, "warmup": warmup}
    with httpx.Client(base_url=url, timeout=30) as client:
        checked(client.get(f"/b/{slug}/"))  # the csrftoken cookie
        for kind in KINDS:
            send = sender(client, kind, slug)
            for i in range(warmup):
                checked(send(i))
            before = Sample.now(pids)
            for i in range(warmup, warmup + requests):
                checked(send(i))
            out[kind] = figures(before, Sample.now(pids), requests)
        seq = int(checked(client.get(f"/b/{slug}/state")).json()["seq"])
    # Every move (warm-up included) must have been applied, or move's figure is another path's.
    if seq != warmup + requests:
        raise CpuError(f"board {slug} at seq {seq} after {warmup + requests} moves")
    return out


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per configuration: runs, skips and {kind: {figure: median/min/max}} over its rounds."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        config = out.setdefault(row["kind"], {"runs": 0, "rounds": 0, "skipped": []})
        config["rounds"] += 1
        if "result" not in row:
            config["skipped"].append(row["skipped"])
            continue
        config["runs"] += 1
        for kind in KINDS:
            for name in FIGURES:
                config.setdefault(kind, {}).setdefault(name, []).append(row["result"][kind][name])
    for config in out.values():
        for kind in KINDS:
            if kind in config:
                config[kind] = {name: spread(v) for name, v in config[kind].items()}
    return out
