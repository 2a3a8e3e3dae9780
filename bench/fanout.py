"""Fan-out load: N SSE viewers of one fresh board, M moves, time from each POST to the viewers.

    .venv/bin/python -m bench.fanout --url http://127.0.0.1:8000 --viewers 1000 --moves 30 \\
        [--pid PID ...] [--json out.json]
    .venv/bin/python -m bench.fanout --floor --viewers 1000     # against bench/floor.py

The viewers are bench/sse_fanout.c (built into var/bench/ with gcc): one epoll thread that only
looks for `data-seq="N"` in the bytes it reads, so the figures are the server's rather than the
client's. Moves are sent one at a time: before each POST the runner notes CLOCK_MONOTONIC, tells
the helper (`MARK seq t_ns`), and waits until every viewer has that seq (`WAIT seq`) plus --gap,
so moves never overlap. With --pid (one or more server processes, summed) it reports VmRSS and
Threads before the viewers connect, once they are connected and after the moves.

From Python (bench/run.py does this for each server it compares): `run(Load(viewers=N), url,
pids)` returns the summary that --json writes; bench/viewers.py drives the helper.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.viewers import ROOT, FanoutError, Viewers, build

__all__ = ["Load", "build", "percentile", "proc_stats", "report", "run", "start_floor"]


@dataclass
class Load:
    """What run() does: the same names as the command line's options."""

    viewers: int = 1000
    moves: int = 30
    gap: float = 0.05
    inflight: int = 256
    ready_timeout: float = 120
    wait_timeout: float = 10


def proc_stats(pids: list[int]) -> dict[str, int]:
    """VmRSS (KiB) and Threads summed over the processes (ones that have exited count 0)."""
    total = {"rss_kib": 0, "threads": 0}
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            status = Path(f"/proc/{pid}/status").read_text()
            for line in status.splitlines():
                name, _, value = line.partition(":")
                if name == "VmRSS":
                    total["rss_kib"] += int(value.split()[0])
                elif name == "Threads":
                    total["threads"] += int(value)
    return total


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (the same rule as the helper's)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[min(int(rank), len(ordered)) - 1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_floor() -> tuple[subprocess.Popen[str], str]:
    """Start bench/floor.py on a free loopback port; returns the process and its URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "bench.floor", "--port", str(port)]
    floor = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert floor.stdout is not None
    if not floor.stdout.readline().startswith("floor:"):
        floor.kill()
        floor.wait()
        raise FanoutError("bench.floor did not start")
    return floor, f"http://127.0.0.1:{port}"


def run(args: Load | argparse.Namespace, url: str, pids: list[int]) -> dict[str, Any]:
    """N viewers of a fresh board, M moves one at a time; the helper's summary plus ours."""
    slug = f"fanout-{time.strftime('%H%M%S')}-{secrets.token_hex(4)}"
    stats = {"before": proc_stats(pids)} if pids else {}
    with Viewers(
        url, slug, args.viewers, args.moves, inflight=args.inflight,
        ready_timeout=args.ready_timeout, wait_timeout=args.wait_timeout,
    ) as viewers:  # fmt: skip
        started = time.monotonic()
        connected, errors, base = viewers.ready()
        print(f"{connected}/{args.viewers} viewers connected in {time.monotonic() - started:.1f} s"
              f" ({errors} errors), board {slug} at seq {base}", file=sys.stderr)  # fmt: skip
        if connected == 0:
            raise FanoutError(f"no viewer got its first event from {url}/b/{slug}/events/")
        if pids:
            stats["connected"] = proc_stats(pids)
        posts: list[float] = []
        stragglers = 0
        with httpx.Client(base_url=url, timeout=30) as client:
            client.get("/").raise_for_status()
            headers = {"X-CSRFToken": client.cookies["csrftoken"], "Accept": "application/json"}
            seq = base
            for i in range(args.moves):
                start = time.monotonic_ns()
                answer = client.post(
                    f"/b/{slug}/move", data={"direction": "da"[i % 2]}, headers=headers
                )
                posts.append((time.monotonic_ns() - start) / 1e6)
                answer.raise_for_status()
                if answer.json()["seq"] != seq + 1:  # someone else moved on this board
                    print(f"move {i}: got seq {answer.json()['seq']}, expected {seq + 1}",
                          file=sys.stderr)  # fmt: skip
                seq = int(answer.json()["seq"])
                viewers.mark(seq, start)
                reached, live, _ = viewers.wait(seq)
                stragglers += reached < live
                time.sleep(args.gap)
            state = client.get(f"/b/{slug}/state").json()
        if pids:
            stats["after"] = proc_stats(pids)
        summary = viewers.done(seq)
    moves = summary["moves"]
    by = {
        k: [m[k] for m in moves if m[k] is not None] for k in ("first_ms", "median_ms", "last_ms")
    }
    summary["url"], summary["slug"], summary["server"] = url, slug, stats
    summary["state"] = state
    summary["post_ms"] = {"p50": percentile(posts, 50), "p99": percentile(posts, 99)}
    summary["latency_ms"] = {
        key.removesuffix("_ms"): {"p50": percentile(values, 50), "p99": percentile(values, 99)}
        for key, values in by.items()
    }
    summary["moves_not_reaching_all"] = stragglers
    return summary


def report(s: dict[str, Any]) -> str:
    lat, c = s["latency_ms"], s["connect_ms"]
    errors = ", ".join(f"{k} {v}" for k, v in s["errors"].items() if v) or "none"
    lines = [
        f"{s['url']} board {s['slug']}: {s['viewers']} viewers, {len(s['moves'])} moves",
        "POST start -> viewer, ms over moves:  p50     p99",
        *(
            f"  {name:<6} viewer                 {lat[name]['p50']:7.1f} {lat[name]['p99']:7.1f}"
            for name in ("first", "median", "last")
        ),
        f"  POST round trip                {s['post_ms']['p50']:7.1f} {s['post_ms']['p99']:7.1f}",
        f"connect -> first event, ms: p50 {c['p50']:.1f}, p99 {c['p99']:.1f}, max {c['max']:.1f}",
        f"connected {s['connected']}, live at the end {s['live']}, errors: {errors}",
        f"final state (seq {s['final_seq']}): {s['final_state']}/{s['viewers']} viewers; "
        f"seq went backwards for {s['backwards']}, repeated for {s['repeats']}; "
        f"moves some live viewer missed within the wait: {s['moves_not_reaching_all']}",
    ]
    for when, st in s["server"].items():
        lines.append(
            f"server {when:<9}: RSS {st['rss_kib'] / 1024:7.1f} MiB, {st['threads']} threads"
        )
    if {"before", "connected"} <= s["server"].keys() and s["connected"]:
        grown = s["server"]["connected"]["rss_kib"] - s["server"]["before"]["rss_kib"]
        lines.append(f"server RSS growth per viewer: {grown / s['connected']:.1f} KiB")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="base URL of a running server, http://127.0.0.x:PORT")
    where.add_argument("--floor", action="store_true", help="start bench/floor.py and use it")
    parser.add_argument("--viewers", type=int, default=1000)
    parser.add_argument("--moves", type=int, default=30)
    parser.add_argument("--pid", type=int, nargs="*", default=[], help="server PIDs to sample")
    parser.add_argument("--json", type=Path, help="also write the full summary here")
    parser.add_argument("--gap", type=float, default=0.05, help="s between moves (after all saw)")
    parser.add_argument("--inflight", type=int, default=256, help="viewers connecting at once")
    parser.add_argument("--ready-timeout", type=float, default=120)
    parser.add_argument("--wait-timeout", type=float, default=10, help="s per move, and final")
    args = parser.parse_args()
    floor = None
    if args.floor:
        floor, url = start_floor()
        pids = [floor.pid, *args.pid]
    else:
        url, pids = args.url.rstrip("/"), args.pid
    try:
        summary = run(args, url, pids)
    finally:
        if floor is not None:
            floor.terminate()
            floor.wait(timeout=10)
    print(report(summary))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
