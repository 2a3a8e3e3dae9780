"""Fan-out load: N SSE viewers of one fresh board, moves, time from each POST to the viewers.

    .venv/bin/python -m bench.fanout --url http://127.0.0.1:8000 --viewers 1000 --moves 30 \\
        [--pace b2b,paced] [--pid PID ...] [--json out.json]
    .venv/bin/python -m bench.fanout --floor --viewers 1000     # against bench/floor.py

The viewers are bench/sse_fanout.c (built into var/bench/ with gcc): one epoll thread that only
looks for `data-seq="N"` in the bytes it reads, so the figures are the server's rather than the
client's. Moves are sent one at a time: before each POST the runner notes CLOCK_MONOTONIC, tells
the helper (`MARK seq t_ns`), and waits until every viewer has that seq (`WAIT seq`), so moves
never overlap; then it paces the next (PACES): back to back (at once), 200 ms start-to-start, or
the old 50 ms rest after each fan-out. One untimed warm-up move comes first, then one phase of
moves per pace on the same viewers. With --pid (one or more server processes, summed) it reports
VmRSS and Threads before the viewers connect, once they are connected and after the moves, and
per phase the CPU other processes used meanwhile (bench/procstat.py).

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

from bench.procstat import Sample, others_core_pct
from bench.viewers import ROOT, FanoutError, Viewers, build

__all__ = ["Load", "PACES", "build", "percentile", "proc_stats", "report", "run", "start_floor"]


@dataclass(frozen=True)
class Pace:
    """Once every viewer has a move: the next POST `rest` s later, and no sooner than `every` s
    after this one's POST started."""

    label: str
    rest: float = 0.0
    every: float = 0.0


PACES = {
    "b2b": Pace("back to back"),
    "paced": Pace("200 ms start-to-start", every=0.2),
    "rest": Pace("50 ms rest after each fan-out", rest=0.05),
}


@dataclass
class Load:
    """What run() does: N viewers, then (pace, moves) phases in order on the same viewers."""

    viewers: int = 1000
    phases: tuple[tuple[str, int], ...] = (("b2b", 30),)
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


class Mover:
    """Moves on one board, one at a time, each timed by the viewers (MARK) and waited for."""

    def __init__(self, client: httpx.Client, slug: str, viewers: Viewers, seq: int) -> None:
        self.client, self.slug, self.viewers, self.seq = client, slug, viewers, seq
        client.get("/").raise_for_status()
        self.headers = {"X-CSRFToken": client.cookies["csrftoken"], "Accept": "application/json"}

    def move(self, mark: bool = True) -> tuple[float, bool]:
        """POST one move, wait until every viewer has it: (POST ms, whether some live one did
        not within the wait)."""
        start = time.monotonic_ns()
        direction = "da"[self.seq % 2]  # each pair cancels out: the logo never hits a wall
        answer = self.client.post(
            f"/b/{self.slug}/move", data={"direction": direction}, headers=self.headers
        )
        post_ms = (time.monotonic_ns() - start) / 1e6
        answer.raise_for_status()
        seq = int(answer.json()["seq"])
        if seq != self.seq + 1:  # someone else moved on this board
            print(f"got seq {seq}, expected {self.seq + 1}", file=sys.stderr)
        self.seq = seq
        if mark:
            self.viewers.mark(seq, start)
        reached, live, _ = self.viewers.wait(seq)
        return post_ms, reached < live

    def phase(self, pace: Pace, moves: int, pids: list[int]) -> dict[str, Any]:
        """`moves` timed moves paced by `pace`; what the summary needs to split them out."""
        first, posts, stragglers = self.seq + 1, [], 0
        before = Sample.now(pids, [self.viewers.proc.pid])
        for _ in range(moves):
            started = time.monotonic()
            post_ms, missed = self.move()
            posts.append(post_ms)
            stragglers += missed
            rest = max(pace.rest, pace.every - (time.monotonic() - started))
            if rest > 0:
                time.sleep(rest)
        after = Sample.now(pids, [self.viewers.proc.pid])
        return {
            "seqs": [first, self.seq],
            "post": posts,
            "moves_not_reaching_all": stragglers,
            "others_core_pct": others_core_pct(before, after),
            "wall_s": after.t - before.t,
        }


def spread(values: list[float]) -> dict[str, float]:
    return {f"p{p}": percentile(values, p) for p in (50, 95, 99)}


def timed(phase: dict[str, Any], moves: list[dict[str, Any]]) -> dict[str, Any]:
    """A phase's latency over its own moves (the helper's per-move figures, by seq)."""
    low, high = phase.pop("seqs")
    mine = [m for m in moves if low <= m["seq"] <= high]
    phase["moves"], phase["seqs"] = len(mine), [low, high]
    phase["post_ms"] = spread(phase.pop("post"))
    phase["latency_ms"] = {
        key.removesuffix("_ms"): spread([m[key] for m in mine if m[key] is not None])
        for key in ("first_ms", "median_ms", "last_ms")
    }
    return phase


def run(load: Load, url: str, pids: list[int]) -> dict[str, Any]:
    """N viewers of a fresh board, a warm-up move, then each phase's moves one at a time."""
    slug = f"fanout-{time.strftime('%H%M%S')}-{secrets.token_hex(4)}"
    stats = {"before": proc_stats(pids)} if pids else {}
    total = 1 + sum(moves for _, moves in load.phases)
    with Viewers(
        url, slug, load.viewers, total, inflight=load.inflight,
        ready_timeout=load.ready_timeout, wait_timeout=load.wait_timeout,
    ) as viewers:  # fmt: skip
        started = time.monotonic()
        connected, errors, base = viewers.ready()
        print(f"{connected}/{load.viewers} viewers connected in {time.monotonic() - started:.1f} s"
              f" ({errors} errors), board {slug} at seq {base}", file=sys.stderr)  # fmt: skip
        if connected == 0:
            raise FanoutError(f"no viewer got its first event from {url}/b/{slug}/events/")
        if pids:
            stats["connected"] = proc_stats(pids)
        with httpx.Client(base_url=url, timeout=30) as client:
            mover = Mover(client, slug, viewers, base)
            # Untimed: the first move after the viewers connected takes cold paths (a new
            # connection, first queries), which would land in whichever phase came first.
            mover.move(mark=False)
            phases = {name: mover.phase(PACES[name], n, pids) for name, n in load.phases}
            state = client.get(f"/b/{slug}/state").json()
        if pids:
            stats["after"] = proc_stats(pids)
        summary = viewers.done(mover.seq)
    summary["url"], summary["slug"], summary["server"] = url, slug, stats
    summary["state"] = state
    summary["phases"] = {name: timed(phase, summary["moves"]) for name, phase in phases.items()}
    summary["order"] = [name for name, _ in load.phases]
    return summary


def report(s: dict[str, Any]) -> str:
    c = s["connect_ms"]
    errors = ", ".join(f"{k} {v}" for k, v in s["errors"].items() if v) or "none"
    lines = [f"{s['url']} board {s['slug']}: {s['viewers']} viewers"]
    for name, ph in s["phases"].items():
        lat, post = ph["latency_ms"], ph["post_ms"]
        lines += [
            f"{PACES[name].label}, {ph['moves']} moves; POST start -> viewer, ms over moves:"
            "  p50     p95     p99",
            *(
                f"  {k:<6} viewer         "
                + " ".join(f"{lat[k][p]:7.1f}" for p in ("p50", "p95", "p99"))
                for k in ("first", "median", "last")
            ),
            "  POST round trip        "
            + " ".join(f"{post[p]:7.1f}" for p in ("p50", "p95", "p99")),
            f"  moves some live viewer missed within the wait: {ph['moves_not_reaching_all']}; "
            f"other processes' CPU meanwhile: {ph['others_core_pct']:.0f}% of a core",
        ]
    lines += [
        f"connect -> first event, ms: p50 {c['p50']:.1f}, p99 {c['p99']:.1f}, max {c['max']:.1f}",
        f"connected {s['connected']}, live at the end {s['live']}, errors: {errors}",
        f"final state (seq {s['final_seq']}): {s['final_state']}/{s['viewers']} viewers; "
        f"seq went backwards for {s['backwards']}, repeated for {s['repeats']}",
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
    parser.add_argument("--moves", type=int, default=30, help="per pace")
    parser.add_argument("--pace", default="b2b", help=f"comma-separated, of {', '.join(PACES)}")
    parser.add_argument("--pid", type=int, nargs="*", default=[], help="server PIDs to sample")
    parser.add_argument("--json", type=Path, help="also write the full summary here")
    parser.add_argument("--inflight", type=int, default=256, help="viewers connecting at once")
    parser.add_argument("--ready-timeout", type=float, default=120)
    parser.add_argument("--wait-timeout", type=float, default=10, help="s per move, and final")
    args = parser.parse_args()
    paces = [p for p in args.pace.split(",") if p]
    if not paces or set(paces) - PACES.keys():
        parser.error(f"--pace: comma-separated, of {', '.join(PACES)}")
    load = Load(
        args.viewers, tuple((p, args.moves) for p in paces), args.inflight, args.ready_timeout,
        args.wait_timeout,
    )  # fmt: skip
    floor = None
    if args.floor:
        floor, url = start_floor()
        pids = [floor.pid, *args.pid]
    else:
        url, pids = args.url.rstrip("/"), args.pid
    try:
        summary = run(load, url, pids)
    finally:
        if floor is not None:
            floor.terminate()
            floor.wait(timeout=10)
    print(report(summary))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
