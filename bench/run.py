"""Side-by-side fan-out benchmark: `make run` (uvicorn, daphne), Pushpin cluster, floor, tutorial.

    make bench                                   # N = 100, 1000, 3000, 10000; 30 moves; burst
    BENCH_VIEWERS=100,1000 BENCH_MOVES=30 make bench
    .venv/bin/python -m bench.run [--viewers 100,1000] [--moves 30] [--kinds floor,uvicorn]
    .venv/bin/python -m bench.run --burst [--burst-viewers 1000] [--clients 8] [--seconds 5]
    .venv/bin/python -m bench.run --cpu [--cpu-kinds uvicorn,daphne] [--requests 300]

For every N, each configuration is started fresh (bench/servers.py), loaded with bench.fanout's
N C viewers and M sequential moves, and stopped; the floor runs first so every figure can be
shown as a ratio to the floor at the same N. A configuration that cannot run, and an N beyond
the open-file limit, is skipped with one line on stderr. The markdown table goes to stdout, the
full JSON to var/bench/bench-<timestamp>.json (burst-<timestamp>.json with --burst).

--cpu: bench/cpu.py's CPU per request over --cpu-rounds fresh starts of each configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import cpu, servers
from bench.burst import burst
from bench.fanout import Load, run
from bench.table import (
    BURST_LEGEND,
    CPU_LEGEND,
    LEGEND,
    burst_markdown,
    cpu_markdown,
    figures,
    markdown,
    ratios,
)

FD_MARGIN = 200  # fds a server or the viewer helper needs besides one per viewer


def skip(kind: str, viewers: int, why: str) -> dict[str, Any]:
    print(f"bench: SKIP {kind} at {viewers:,} viewers: {why}", file=sys.stderr, flush=True)
    return {"kind": kind, "viewers": viewers, "skipped": why}


def fd_limit() -> int:
    """Raise our soft open-file limit to the hard one (children inherit it); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return 1 << 20 if hard == resource.RLIM_INFINITY else hard


def measure(
    kind: str, viewers: int, tag: str, job: Callable[[servers.Target], dict[str, Any]]
) -> dict[str, Any]:
    """Start `kind` fresh, run job against it, stop it; a skip row when it cannot run."""
    why = servers.unavailable(kind)
    if why:
        return skip(kind, viewers, why)
    if viewers + FD_MARGIN > fd_limit():
        return skip(kind, viewers, f"needs ~{viewers + FD_MARGIN:,} fds, limit {fd_limit():,}")
    what = f"{viewers:,} viewers" if viewers else tag
    print(f"bench: {kind} with {what}", file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        with servers.STARTERS[kind](tag) as target:
            result = job(target)
            result["processes"] = {str(pid): name for pid, name in target.names.items()}
    except (SystemExit, Exception) as exc:  # FanoutError (a SystemExit), ServiceError, ...
        return skip(kind, viewers, f"{type(exc).__name__}: {exc}".splitlines()[0])
    result["wall_s"] = time.monotonic() - started
    return {"kind": kind, "viewers": viewers, "result": result}


def fanout_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for n in args.viewers:
        load = Load(viewers=n, moves=args.moves)
        measured = []
        for kind in args.kinds:
            row = measure(kind, n, str(n), lambda t, load=load: run(load, t.url, t.pids))
            if "result" in row:
                row["figures"] = figures(row["result"])
            measured.append(row)
        floor = next(
            (r["figures"] for r in measured if r["kind"] == "floor" and "figures" in r), None
        )
        for row in measured:
            if "figures" in row:
                row["ratio"] = ratios(row["figures"], floor)
        rows += measured
    return rows


def burst_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    def job(t: servers.Target) -> dict[str, Any]:
        return burst(
            t.url, t.pids, viewers=args.burst_viewers, clients=args.clients, seconds=args.seconds
        )

    return [measure(kind, args.burst_viewers, "burst", job) for kind in args.burst_kinds]


def cpu_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    def job(t: servers.Target) -> dict[str, Any]:
        return cpu.measure(t.url, t.pids, requests=args.requests)

    # Fresh starts rather than rounds on one start, so that what differs between starts shows
    # in the min–max; configurations take turns, so a disturbance hits all rather than one.
    rounds = range(1, args.cpu_rounds + 1)
    return [measure(kind, 0, f"cpu-{r}", job) for r in rounds for kind in args.cpu_kinds]


def csv(kind: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    return lambda text: [kind(v) for v in text.split(",") if v.strip()]


def revision() -> str:
    """The code measured: `git describe --always --dirty`, or "?"."""
    git = ["git", "describe", "--always", "--dirty"]
    out = subprocess.run(git, cwd=servers.ROOT, capture_output=True, text=True, check=False)
    return out.stdout.strip() or "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_viewers = os.environ.get("BENCH_VIEWERS") or "100,1000,3000,10000"
    parser.add_argument("--viewers", type=csv(int), default=csv(int)(default_viewers))
    parser.add_argument("--moves", type=int, default=int(os.environ.get("BENCH_MOVES") or 30))
    parser.add_argument("--kinds", type=csv(str), default=list(servers.KINDS))
    parser.add_argument("--burst", action="store_true", help="the burst mode instead")
    parser.add_argument("--burst-kinds", type=csv(str), default=list(servers.BURST_KINDS))
    parser.add_argument("--burst-viewers", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8, help="burst POST connections")
    parser.add_argument("--seconds", type=float, default=5, help="burst length")
    parser.add_argument("--cpu", action="store_true", help="the CPU-per-request mode instead")
    parser.add_argument("--cpu-kinds", type=csv(str), default=["uvicorn", "daphne"])
    parser.add_argument("--cpu-rounds", type=int, default=3, help="fresh starts of each")
    parser.add_argument("--requests", type=int, default=300, help="per request kind and start")
    parser.add_argument("--json", type=Path, help="default var/bench/<mode>-<timestamp>.json")
    args = parser.parse_args()
    for kind in [*args.kinds, *args.burst_kinds, *args.cpu_kinds]:
        if kind not in servers.KINDS:
            parser.error(f"unknown configuration {kind!r}; one of {', '.join(servers.KINDS)}")
    stamp, code = time.strftime("%Y%m%d-%H%M%S"), revision()
    mode = "cpu" if args.cpu else "burst" if args.burst else "bench"
    rows = {"cpu": cpu_rows, "burst": burst_rows, "bench": fanout_rows}[mode](args)
    extra: dict[str, Any] = {}
    if args.cpu:
        title = f"CPU per request: {args.requests} sequential requests per kind"
        extra["summary"] = summary = cpu.summarise(rows)
        table = cpu_markdown(summary, cpu.LABELS)
        legend = CPU_LEGEND.format(
            requests=args.requests, warmup=cpu.WARMUP, rounds=args.cpu_rounds
        )
    elif args.burst:
        title = f"Burst: {args.clients} clients × {args.seconds:g} s"
        title += f", {args.burst_viewers:,} viewers"
        table, legend = burst_markdown(rows), BURST_LEGEND
    else:
        title = f"Fan-out: {args.moves} moves; (×r) = r times the floor at the same N"
        table, legend = markdown(rows), LEGEND
    print(f"\n### {title} (code {code})\n\n{table}\n\n{legend}\n", flush=True)
    out = args.json or servers.BENCH_VAR / f"{mode}-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"mode": mode, "started": stamp, "code": code, "args": dict(vars(args))}
    meta["args"]["json"] = str(out)
    out.write_text(json.dumps({**meta, "rows": rows, **extra}, indent=2, default=str) + "\n")
    print(f"bench: wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
