"""Side-by-side fan-out benchmark: `make run` (uvicorn, daphne), Pushpin cluster, floors, tutorial.

    make bench                          # N = 100, 1000, 3000, 10000; 2 paces × 30 moves; 3 runs
    BENCH_VIEWERS=100,1000 BENCH_MOVES=30 BENCH_RUNS=3 make bench
    .venv/bin/python -m bench.run [--viewers 100,1000] [--moves 30 | --moves b2b=200,paced=30]
        [--paces b2b,paced] [--runs 3] [--kinds floor,uvicorn] [--cap tutorial=1000]
    .venv/bin/python -m bench.run --burst [--burst-viewers 1000] [--clients 8] [--seconds 5]
    .venv/bin/python -m bench.run --cpu [--cpu-kinds uvicorn,daphne] [--requests 1000]
    .venv/bin/python -m bench.run --storm [--storm-viewers 10000] [--storm-kinds floor,uvicorn]

For every N and run, each configuration is started fresh (bench/servers.py), loaded with
bench.fanout's N C viewers, an untimed warm-up move, then each pace's moves (bench.fanout.PACES:
b2b, the next POST as soon as every viewer has the previous; paced, 200 ms start-to-start),
and stopped. The floor runs first and the configurations take turns within a run, so each run's
figures are shown as ratios to that run's floor at the same N, then summarised over the runs
(median, min–max); the paces swap order every other run. A configuration that cannot run, an N
beyond the open-file limit and one beyond the configuration's --cap are skipped with one line on
stderr. The markdown tables go to stdout, every run's JSON to var/bench/bench-<timestamp>.json
(burst-<timestamp>.json with --burst).

--burst: bench/burst.py over --runs fresh starts of each, ratios to the write-path floor's.
--cpu: bench/cpu.py's CPU per request over --cpu-rounds fresh starts of each configuration.
--storm: bench/storm.py's connect storm and restart storm over --runs fresh starts of each.
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

from bench import cpu, servers, storm
from bench.burst import burst
from bench.fanout import PACES, Load, run
from bench.table import (
    BURST_COLUMNS,
    BURST_LEGEND,
    CPU_LEGEND,
    LEGEND,
    burst_figures,
    burst_markdown,
    cpu_markdown,
    figures,
    markdown,
    over,
    ratios,
)

FD_MARGIN = 200  # fds a server or the viewer helper needs besides one per viewer
# Burst ratios are to the write-path floor (moves committed to SQLite), else to the plain one.
BURST_FLOORS = ("writefloor", "floor")


def skip(kind: str, viewers: int, why: str) -> dict[str, Any]:
    print(f"bench: SKIP {kind} at {viewers:,} viewers: {why}", file=sys.stderr, flush=True)
    return {"kind": kind, "viewers": viewers, "skipped": why}


def tag_run(row: dict[str, Any], run: int) -> dict[str, Any]:
    row["run"] = run
    return row


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
        for r in range(1, args.runs + 1):
            phases = tuple((pace, args.moves[pace]) for pace in args.paces)
            # Swapped every other run: what the first phase leaves behind lands on both.
            load = Load(viewers=n, phases=phases if r % 2 else phases[::-1])
            measured = []
            for kind in args.kinds:
                if n > args.cap.get(kind, n):
                    row = skip(kind, n, f"--cap {kind}={args.cap[kind]:,}")
                else:
                    job = lambda t, load=load: run(load, t.url, t.pids)  # noqa: E731
                    row = measure(kind, n, f"{n}-{r}", job)
                if "result" in row:
                    row["figures"] = figures(row["result"])
                measured.append(tag_run(row, r))
            floor = next(
                (m["figures"] for m in measured if m["kind"] == "floor" and "figures" in m), None
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

    rows = []
    for r in range(1, args.runs + 1):
        measured = [
            tag_run(measure(kind, args.burst_viewers, f"burst-{r}", job), r)
            for kind in args.burst_kinds
        ]
        for row in measured:
            if "result" in row:
                row["figures"] = {"all": burst_figures(row["result"])}
        floors = {m["kind"]: m["figures"]["all"] for m in measured if "figures" in m}
        floor = next((floors[k] for k in BURST_FLOORS if k in floors), None)
        for row in measured:
            if "figures" in row and floor is not None:
                row["ratio"] = {"all": over(row["figures"]["all"], floor, BURST_COLUMNS)}
        rows += measured
    return rows


def cpu_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    def job(t: servers.Target) -> dict[str, Any]:
        return cpu.measure(t.url, t.pids, requests=args.requests)

    # Fresh starts rather than rounds on one start, so that what differs between starts shows
    # in the min–max; configurations take turns, so a disturbance hits all rather than one.
    rounds = range(1, args.cpu_rounds + 1)
    return [measure(kind, 0, f"cpu-{r}", job) for r in rounds for kind in args.cpu_kinds]


def csv(kind: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    return lambda text: [kind(v) for v in text.split(",") if v.strip()]


def per_name(text: str) -> dict[str, int]:
    """`name=N,name=N` (or a bare N: {"": N}, the default for every name)."""
    out = {}
    for item in csv(str)(text):
        name, _, value = item.rpartition("=")
        out[name.strip()] = int(value)
    return out


def revision() -> str:
    """The code measured: `git describe --always --dirty`, or "?"."""
    git = ["git", "describe", "--always", "--dirty"]
    out = subprocess.run(git, cwd=servers.ROOT, capture_output=True, text=True, check=False)
    return out.stdout.strip() or "?"


def runs(args: argparse.Namespace) -> str:
    return f"median (min–max) of {args.runs} runs" if args.runs > 1 else "1 run"


def env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--viewers", type=csv(int), default=env("BENCH_VIEWERS", "100,1000,3000,10000"))
    add("--moves", type=per_name, default=env("BENCH_MOVES", "30"), help="N or b2b=N,paced=N")
    add("--paces", type=csv(str), default=env("BENCH_PACES", "b2b,paced"), help=", ".join(PACES))
    add("--runs", type=int, default=env("BENCH_RUNS", "3"), help="fresh starts of each")
    add("--cap", type=per_name, default=env("BENCH_CAPS", "tutorial=1000"), help="kind=N,...")
    add("--kinds", type=csv(str), default=env("BENCH_KINDS", ",".join(servers.KINDS)))
    parser.add_argument("--burst", action="store_true", help="the burst mode instead")
    parser.add_argument("--burst-kinds", type=csv(str), default=list(servers.BURST_KINDS))
    parser.add_argument("--burst-viewers", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8, help="burst POST connections")
    parser.add_argument("--seconds", type=float, default=5, help="burst length")
    parser.add_argument("--cpu", action="store_true", help="the CPU-per-request mode instead")
    parser.add_argument("--cpu-kinds", type=csv(str), default=["uvicorn", "daphne"])
    parser.add_argument("--cpu-rounds", type=int, default=3, help="fresh starts of each")
    parser.add_argument("--requests", type=int, default=1000, help="per request kind and start")
    parser.add_argument("--storm", action="store_true", help="the connect/restart storms instead")
    parser.add_argument("--storm-kinds", type=csv(str), default=list(storm.KINDS))
    parser.add_argument("--storm-viewers", type=int, default=10000)
    parser.add_argument("--open-timeout", type=float, default=60, help="storm: s to open")
    parser.add_argument("--back-timeout", type=float, default=60, help="storm: s to come back")
    parser.add_argument("--retry-ms", type=int, default=3000, help="storm: without `retry:`")
    parser.add_argument("--json", type=Path, help="default var/bench/<mode>-<timestamp>.json")
    args = parser.parse_args()
    for kind in [*args.kinds, *args.burst_kinds, *args.cpu_kinds, *args.storm_kinds, *args.cap]:
        if kind not in servers.STARTERS:
            parser.error(f"unknown configuration {kind!r}; one of {', '.join(servers.STARTERS)}")
    if not args.paces or set(args.paces) - PACES.keys():
        parser.error(f"--paces: comma-separated, of {', '.join(PACES)}")
    default = args.moves.pop("", 30)
    if set(args.moves) - set(args.paces):
        parser.error(f"--moves: N, or pace=N for the paces run ({', '.join(args.paces)})")
    args.moves = {pace: args.moves.get(pace, default) for pace in args.paces}
    if args.runs < 1 or min(args.moves.values()) < 1:
        parser.error("--runs and --moves must be at least 1")
    stamp, code = time.strftime("%Y%m%d-%H%M%S"), revision()
    mode = "cpu" if args.cpu else "burst" if args.burst else "storm" if args.storm else "bench"
    jobs = {"cpu": cpu_rows, "burst": burst_rows, "bench": fanout_rows}
    rows = storm.rows(args, measure) if args.storm else jobs[mode](args)
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
        title += f", {args.burst_viewers:,} viewers, {runs(args)}"
        yardstick = next((k for k in BURST_FLOORS if k in args.burst_kinds), "floor")
        table, legend = burst_markdown(rows), BURST_LEGEND.format(floor=yardstick)
    elif args.storm:
        title = f"Connect storm: {args.storm_viewers:,} viewers opening at once, {runs(args)}"
        print(f"\n### {title} (code {code})\n\n{storm.markdown(rows, 'open')}\n", flush=True)
        title = f"Restart storm: the same viewers, the server restarted, {runs(args)}"
        table = storm.markdown(rows, "restart")
        legend = storm.LEGEND.format(retry=args.retry_ms, back=args.back_timeout)
    else:
        for pace in args.paces:
            title = f"Fan-out, {PACES[pace].label}: {args.moves[pace]} moves, {runs(args)};"
            title += " (×r) = r times the floor at the same N in the same run"
            print(f"\n### {title} (code {code})\n\n{markdown(rows, pace)}\n", flush=True)
        title = f"Fan-out, each start: connections, memory, final state ({runs(args)})"
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
