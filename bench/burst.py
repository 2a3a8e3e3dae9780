"""Burst: C client processes POST moves as fast as they can for T seconds while V viewers watch.

Each client (its own process, one httpx.Client) GETs / once for the csrftoken cookie, then POSTs
d, a, s, w, d, ... (each four cancel out, so the logo never drifts into a wall) until T has
passed. Afterwards the runner reads the final seq from GET /b/<slug>/state and asks the C viewers
to WAIT for it: "settle" is the time from the last accepted move's answer until the last live
viewer got that seq (the helper notes when each viewer's seq last changed; settle_answered_ms,
in the JSON, is until the WAIT was answered, an upper bound including GET /state).
"""

from __future__ import annotations

import multiprocessing
import secrets
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import httpx

from bench.fanout import percentile, proc_stats
from bench.viewers import FanoutError, Viewers

DIRECTIONS = "dasw"
# (answered at, CLOCK_MONOTONIC s; round trip ms; HTTP status or 0 for a transport error)
Post = tuple[float, float, int]


def client(url: str, slug: str, start_at: float, seconds: float, offset: int) -> list[Post]:
    """One burst client: cookie first, then POST moves from start_at for `seconds`."""
    posts: list[Post] = []
    with httpx.Client(base_url=url, timeout=30) as http:
        http.get("/").raise_for_status()
        headers = {"X-CSRFToken": http.cookies["csrftoken"], "Accept": "application/json"}
        time.sleep(max(0.0, start_at - time.monotonic()))
        end, i = start_at + seconds, offset
        while (sent := time.monotonic()) < end:
            direction = DIRECTIONS[i % len(DIRECTIONS)]
            try:
                status = http.post(
                    f"/b/{slug}/move", data={"direction": direction}, headers=headers
                ).status_code
            except httpx.HTTPError:
                status = 0
            answered = time.monotonic()
            posts.append((answered, (answered - sent) * 1e3, status))
            i += 1
    return posts


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
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(clients, mp_context=context) as pool:
            start_at = time.monotonic() + 1.5  # every client has its cookie by then
            futures = [pool.submit(client, url, slug, start_at, seconds, k) for k in range(clients)]
            posts = [post for f in futures for post in f.result()]
        stats["after"] = proc_stats(pids)
        accepted = [p for p in posts if p[2] == 200]
        last_answer = max((p[0] for p in accepted), default=time.monotonic())
        state = httpx.get(f"{url}/b/{slug}/state", timeout=30).json()
        reached, live, t_all_ns = watch.wait(int(state["seq"]))
        answered = time.monotonic()
        summary = watch.done(int(state["seq"]))
    round_trips = [p[1] for p in posts]
    statuses: dict[str, int] = {}
    for p in posts:
        statuses[str(p[2])] = statuses.get(str(p[2]), 0) + 1
    return {
        "url": url,
        "slug": slug,
        "viewers": viewers,
        "clients": clients,
        "seconds": seconds,
        "connected": connected,
        "connect_errors": errors,
        "base_seq": base,
        "posts": len(posts),
        "accepted": len(accepted),
        "post_status": statuses,
        "accepted_per_s": len(accepted) / seconds,
        "post_ms": {"p50": percentile(round_trips, 50), "p99": percentile(round_trips, 99)},
        "state": state,
        "seq_advance": int(state["seq"]) - base,
        "settle_ms": (t_all_ns / 1e9 - last_answer) * 1e3,
        "settle_answered_ms": (answered - last_answer) * 1e3,
        "reached_final": reached,
        "live": live,
        "viewer_summary": {k: v for k, v in summary.items() if k != "moves"},
        "server": stats,
    }
