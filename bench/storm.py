"""Connect and restart storms (issue #10, rows 4 and 5) with bench/storm_client.c's viewers.

    .venv/bin/python -m bench.run --storm [--storm-viewers 10000] [--storm-kinds floor,uvicorn]
        [--runs 3] [--retry-ms 3000]

Row 4: N viewers of one fresh board connect all at once (no in-flight cap); the time from the
first connect to the last viewer's opening event (its first `position` event), and the errors:
refused, reset, non-200, no opening within --open-timeout. Row 5, on the same viewers: the server
is killed and started again at once on its port (Target.restart: SIGKILL for one process; the
cluster's Pushpin, which holds every stream); the viewers reconnect as Chromium's EventSource does
(see storm_client.c). As soon as the new server answers GET /, one move (a player pressing a key
the moment the game is back; while it is down a POST has nowhere to go), and its seq from
GET /state: the time from the kill until every viewer has that seq on a new stream, and the
errors: viewers that never got back within --back-timeout.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import secrets
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench import servers
from bench.procstat import Sample, others_core_pct
from bench.table import column_cells, groups, name, over, table
from bench.viewers import ROOT, Viewers, build, loopback_address

SOURCE = Path(__file__).with_name("storm_client.c")
BINARY = ROOT / "var" / "bench" / "storm_client"
KINDS = ("floor", "uvicorn", "daphne", "cluster")
OPEN_COLUMNS = {
    "open_s": ("all opened s", True, 2),
    "opened": ("opened", False, 0),
    "errors": ("errors", False, 0),
    "others": ("others % of a core", False, 0),
}
RESTART_COLUMNS = {
    "back_s": ("kill → all back on the new seq s", True, 2),
    "over_open_s": ("that − all opened s", False, 2),
    "up_s": ("kill → GET / answers s", True, 2),
    "errors": ("never back", False, 0),
    "failed": ("failed attempts", False, 0),
    "others": ("others % of a core", False, 0),
}
LEGEND = (
    "all opened: first connect → the last viewer's opening event, every connect started at"
    " once; errors: refused, reset, non-200 or no opening in time. kill → all back: the server"
    " SIGKILLed and started again at once (cluster: Pushpin stopped and started), the viewers"
    " reconnecting as EventSource does (after the stream's `retry:`, else {retry} ms; again on"
    " each refused attempt; a non-200 ends a viewer), one move as soon as GET / answers; until"
    " every viewer had its seq on a new stream, – when some never did (never back, within"
    " {back:g} s). that − all opened: row 5's target is ≤ 7 s. failed attempts: refused or cut"
    " reconnects, retried. (×r): r times the floor of the same run. others: as in the fan-out"
    " table, during the opening and during the restart."
)


class Client(Viewers):
    """A running storm_client (its control protocol is at the top of storm_client.c)."""

    def __init__(self, url: str, slug: str, viewers: int, args: argparse.Namespace) -> None:
        host, port = loopback_address(url)
        cmd = [str(build(SOURCE, BINARY)), "-h", host, "-p", str(port), "-s", slug]
        cmd += ["-n", str(viewers), "-t", str(args.open_timeout), "-w", str(args.back_timeout)]
        cmd += ["-r", str(args.retry_ms)]
        # Viewers' own start-up, with this helper's command line; its methods then fit as they are.
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in, self._out = self.proc.stdin, self.proc.stdout


def answering(url: str, timeout: float) -> bool:
    """GET url/ until it answers 200 (connection refused meanwhile): whether it did in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/", timeout=5).status_code == 200:
                return True
        time.sleep(0.05)
    return False


def move(url: str, slug: str) -> int:
    """One move on the board; the board's seq after it, from GET /state."""
    with httpx.Client(base_url=url, timeout=30) as client:
        client.get("/").raise_for_status()
        headers = {"X-CSRFToken": client.cookies["csrftoken"], "Accept": "application/json"}
        client.post(f"/b/{slug}/move", data={"direction": "d"}, headers=headers)
        return int(client.get(f"/b/{slug}/state").json()["seq"])


def storm(target: servers.Target, viewers: int, args: argparse.Namespace) -> dict[str, Any]:
    """Row 4 on a fresh board, then (when the target can restart) row 5 on the same viewers."""
    slug = f"storm-{time.strftime('%H%M%S')}-{secrets.token_hex(4)}"
    out: dict[str, Any] = {"url": target.url, "slug": slug}
    with Client(target.url, slug, viewers, args) as client:
        helper = [client.proc.pid]
        before = Sample.now(target.pids, helper)
        opened, errors, base, open_ms = client.expect("OPEN")
        opening = Sample.now(target.pids, helper)
        out["open"] = {"opened": int(opened), "errors": int(errors), "open_ms": float(open_ms)}
        out["open"]["others_core_pct"] = others_core_pct(before, opening)
        if target.restart is not None and int(opened):
            killed = time.monotonic_ns()
            client.tell(f"KILL {killed}")
            target.restart()
            restarted = Sample.now(target.pids, helper)
            up = answering(target.url, args.back_timeout)
            up_ms = (time.monotonic_ns() - killed) / 1e6 if up else math.nan
            # Never up: wait for a seq no viewer can have, so that the client counts them all.
            seq = move(target.url, slug) if up else int(base) + 1
            client.tell(f"WAIT {seq}")
            back, n, t_ns = (int(v) for v in client.expect("BACK")[1:])
            out["restart"] = {"seq": seq, "back": back, "viewers": n, "up_ms": up_ms}
            out["restart"]["back_ms"] = (t_ns - killed) / 1e6 if back == n else math.nan
            out["restart"]["others_core_pct"] = others_core_pct(restarted, Sample.now(
                target.pids, helper))  # fmt: skip
        out["client"] = client.done(-1)
    return out


def figures(s: dict[str, Any]) -> dict[str, Any]:
    o, c = s["open"], s["client"]
    got: dict[str, Any] = {"open": {"open_s": o["open_ms"] / 1e3, "opened": o["opened"]}}
    got["open"] |= {"errors": o["errors"], "others": o["others_core_pct"]}
    if r := s.get("restart"):
        back_s = r["back_ms"] / 1e3
        got["restart"] = {"back_s": back_s, "over_open_s": back_s - got["open"]["open_s"]}
        got["restart"] |= {"up_s": r["up_ms"] / 1e3, "errors": c["viewers"] - r["back"]}
        failed = sum(c["failed_attempts"].values())  # the streams the kill cut are not in it
        got["restart"] |= {"failed": failed, "others": r["others_core_pct"]}
    return got


def rows(args: argparse.Namespace, measure: Callable[..., dict[str, Any]]) -> list[dict[str, Any]]:
    """Each kind fresh per run, taking turns; ratios to that run's floor."""
    out = []
    for r in range(1, args.runs + 1):
        job = lambda t: storm(t, args.storm_viewers, args)  # noqa: E731
        measured = [
            measure(kind, args.storm_viewers, f"storm-{r}", job) for kind in args.storm_kinds
        ]
        for row in measured:
            row["run"] = r
            if "result" in row:
                row["figures"] = figures(row["result"])
        floor = next(
            (m["figures"] for m in measured if m["kind"] == "floor" and "figures" in m), {}
        )
        for row in measured:
            if "figures" in row:
                row["ratio"] = {
                    part: over(f, floor[part], columns)
                    for part, columns in (("open", OPEN_COLUMNS), ("restart", RESTART_COLUMNS))
                    if part in row["figures"] and part in floor
                    for f in [row["figures"][part]]
                }
        out += measured
    return out


def markdown(rows: list[dict[str, Any]], part: str) -> str:
    """Row 4's table (part "open") or row 5's ("restart")."""
    columns = OPEN_COLUMNS if part == "open" else RESTART_COLUMNS
    head = ["config", "viewers", *(h for h, _, _ in columns.values())]
    lines = []
    for (viewers, kind), runs in groups(rows).items():
        measured = [r for r in runs if part in r.get("figures", {})]
        why = next((r["skipped"] for r in runs if "skipped" in r), "no restart")
        cells = column_cells(measured, part, columns) if measured else [f"skipped: {why}"]
        cells += [""] * (len(columns) - len(cells))
        lines.append([name(kind, runs, measured), f"{viewers:,}", *cells])
    return table(head, lines)
