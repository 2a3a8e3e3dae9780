"""Burst: C keep-alive connections POST moves flat out for T seconds while V viewers watch.

The runner GETs / once for the csrftoken cookie, then bench/post_burst.c opens `clients`
keep-alive connections, each POSTing d, a, s, w, d, ... (each four cancel out, so the logo never
drifts into a wall) and waiting for each answer, until T has passed. Afterwards the runner reads
the final seq from GET /b/<slug>/state and asks the C viewers to WAIT for it: "settle" is the
time from the last accepted move's answer until the last live viewer got that seq (both
CLOCK_MONOTONIC; the helper notes when each viewer's seq last changed; settle_answered_ms, in the
JSON, is until the WAIT was answered, an upper bound including GET /state). others_core_pct:
the CPU every other process used during the burst (bench/procstat.py).
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from bench.fanout import proc_stats
from bench.procstat import Sample, others_core_pct
from bench.viewers import ROOT, FanoutError, Viewers, build, loopback_address

SOURCE = Path(__file__).with_name("post_burst.c")
BINARY = ROOT / "var" / "bench" / "post_burst"


def post_moves(url: str, slug: str, clients: int, seconds: float) -> dict[str, Any]:
    """Run post_burst against url (csrftoken from GET /): its JSON summary."""
    host, port = loopback_address(url)
    response = httpx.get(f"{url}/", timeout=30)
    response.raise_for_status()
    token = response.cookies.get("csrftoken")
    if not token:
        raise FanoutError(f"GET {url}/ set no csrftoken cookie")
    cmd = [str(build(SOURCE, BINARY)), "-h", host, "-p", str(port), "-s", slug, "-k", token]
    cmd += ["-c", str(clients), "-t", str(seconds)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise FanoutError(f"post_burst failed ({done.returncode}): {done.stderr.strip()}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def burst(
    url: str,
    pids: list[int],
    *,
    viewers: int = 1000,
    clients: int = 8,
    seconds: float = 5,
    wait_timeout: float = 60,
) -> dict[str, Any]:
    slug = f"burst-{time.strftime('%H%M%S')}-{secrets.token_hex(4)}"
    stats = {"before": proc_stats(pids)}
    with Viewers(url, slug, viewers, 0, wait_timeout=wait_timeout) as watch:
        connected, errors, base = watch.ready()
        if connected == 0:
            raise FanoutError(f"no viewer got its first event from {url}/b/{slug}/events/")
        stats["connected"] = proc_stats(pids)
        # post_burst, a finished child by the second sample, counts in this process's ticks.
        before = Sample.now(pids, [watch.proc.pid])
        posted = post_moves(url, slug, clients, seconds)
        others = others_core_pct(before, Sample.now(pids, [watch.proc.pid]))
        stats["after"] = proc_stats(pids)
        last_answer = (posted["last_accepted_ns"] or time.monotonic_ns()) / 1e9
        state = httpx.get(f"{url}/b/{slug}/state", timeout=30).json()
        reached, live, t_all_ns = watch.wait(int(state["seq"]))
        answered = time.monotonic()
        summary = watch.done(int(state["seq"]))
    return {
        "url": url,
        "slug": slug,
        "viewers": viewers,
        "clients": clients,
        "seconds": seconds,
        "connected": connected,
        "connect_errors": errors,
        "base_seq": base,
        "posts": posted["posts"],
        "accepted": posted["accepted"],
        "post_status": {"2xx": posted["accepted"], **posted["status"]},
        "accepted_per_s": posted["accepted"] / seconds,
        "post_ms": posted["post_ms"],
        "post_client": {k: posted[k] for k in ("start_ns", "end_ns", "max_seq")},
        "state": state,
        "seq_advance": int(state["seq"]) - base,
        "settle_ms": (t_all_ns / 1e9 - last_answer) * 1e3,
        "settle_answered_ms": (answered - last_answer) * 1e3,
        "reached_final": reached,
        "live": live,
        "viewer_summary": {k: v for k, v in summary.items() if k != "moves"},
        "server": stats,
        "others_core_pct": others,
    }
