"""Soak: one `make run` server for SOAK_SECONDS under steady moves and churning viewers.

    make soak                                    # uvicorn (as make run), 600 s, 200 viewers
    SERVER=daphne SOAK_SECONDS=120 make soak
    .venv/bin/python -m bench.soak [--server daphne] [--seconds 600] [--viewers 200]
        [--movers 2] [--rate 2] [--json out.json]

The server is started as bench/servers.py starts `make run`'s (own SQLite under var/bench/),
with the per-client limits off (SNAKE_MOVES_PER_SECOND=0, SNAKE_MAX_STREAMS_PER_IP=0): the soak
is one machine playing many clients. Load, all from one asyncio process on raw sockets:

- `--movers` clients each POST a move `--rate` times a second on one keep-alive connection;
- a pool of `--viewers` SSE viewers, each staying a random 2-60 s and then leaving, replaced
  at once by a new one: most close cleanly, some reset the connection (SO_LINGER 0), some
  leave before their first event. Every viewer checks it never gets an older seq after a
  newer one.

Every `--interval` seconds the server's VmRSS, Threads and open fds are sampled from /proc.

Checks (exit status 1 if any fails):

- RSS stable: with W = min(60 s, seconds / 5) of warm-up, the mean RSS of the last W seconds
  is within 10% of the mean over [W, 2W) (for 600 s: the last minute against the minute
  after the first minute).
- No leaked fds: once every viewer has closed, open fds come back to what they were after a
  warm-up round (before the soak), within a small slack.
- No leaked threads: likewise for threads, against the larger of that baseline and the most
  seen in [W, 2W). Thread pools grow lazily to a fixed size (asyncio's default executor, where
  the board reads run, to min(32, cpus + 4)); a warm-up round does not always fill them, and a
  pool reaching its size in the first minutes is not a leak. A leak keeps growing after that.
- Every viewer still connected at the end is on the final state (`/state`'s seq).
- No errors: every move answered 200, every viewer's stream opened 200, no stream ended by
  the server, no seq going backwards.

A short report goes to stdout, JSON to var/bench/soak-<server>-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import socket
import statistics
import struct
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import servers

SLUG = "soak"
SEQ = re.compile(rb'data-seq="(\d+)"')
RSS_TOLERANCE = 0.10
THREAD_SLACK = 2
FD_SLACK = 8
LIFETIME = (2.0, 60.0)  # seconds a viewer stays
# How a viewer leaves: most cleanly, some with a reset, some before their first event.
LEAVING = (("close", 0.8), ("reset", 0.15), ("early", 0.05))


@dataclass
class Counts:
    opened: int = 0
    left: int = 0
    connect_errors: int = 0
    bad_status: int = 0
    ended_by_server: int = 0
    regressions: int = 0
    moves: int = 0
    move_errors: int = 0
    move_statuses: dict[str, int] = field(default_factory=dict)


def proc_sample(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_kib": int(fields["VmRSS"].split()[0]),
        "threads": int(fields["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


class Viewer:
    """One SSE viewer on a raw socket; remembers the newest seq it was sent."""

    def __init__(self, soak: Soak) -> None:
        self.soak = soak
        self.seq = -1
        self.streaming = False

    async def run(self, lifetime: float, leaving: str) -> None:
        soak, counts = self.soak, self.soak.counts
        try:
            reader, writer = await asyncio.open_connection(soak.host, soak.port)
        except OSError:
            counts.connect_errors += 1
            return
        counts.opened += 1
        try:
            writer.write(soak.request)
            if leaving == "early":
                await asyncio.sleep(0.01)  # gone before the server has answered
                return
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            if not head.startswith(b"HTTP/1.1 200"):
                counts.bad_status += 1
                return
            self.streaming = True
            deadline = asyncio.get_running_loop().time() + lifetime
            tail = b""
            while True:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0 and not soak.holding:
                    break
                try:
                    data = await asyncio.wait_for(reader.read(65536), max(left, 1.0))
                except TimeoutError:
                    continue
                if not data:
                    counts.ended_by_server += 1
                    return
                # A read may split a fragment: look again at the end of the previous read.
                found = SEQ.findall(tail + data)
                tail = data[-64:]
                for seq in map(int, found):
                    if seq < self.seq:
                        counts.regressions += 1
                    self.seq = max(self.seq, seq)
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            counts.ended_by_server += 1
        finally:
            self.streaming = False
            if leaving == "reset":
                with contextlib.suppress(OSError):
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            counts.left += 1


class Soak:
    def __init__(self, args: argparse.Namespace, url: str, pid: int) -> None:
        self.args = args
        self.url = url
        self.pid = pid
        self.host, _, port = url.removeprefix("http://").partition(":")
        self.port = int(port)
        self.request = (
            f"GET /b/{SLUG}/events/ HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            "Accept: text/event-stream\r\n\r\n"
        ).encode()
        self.counts = Counts()
        self.holding = False  # at the end: viewers stay until they are checked
        self.churning = True
        self.viewers: set[Viewer] = set()
        self.samples: list[dict[str, Any]] = []
        self.started = 0.0

    async def viewer_slot(self) -> None:
        """Keep one viewer connected, replacing it as soon as it leaves."""
        rng = random.Random()
        while self.churning:
            viewer = Viewer(self)
            self.viewers.add(viewer)
            leaving = rng.choices([w for w, _ in LEAVING], [p for _, p in LEAVING])[0]
            try:
                await viewer.run(rng.uniform(*LIFETIME), leaving)
            finally:
                self.viewers.discard(viewer)
            if self.counts.connect_errors:
                await asyncio.sleep(0.5)  # do not spin on a refusing server

    async def mover(self, client: httpx.AsyncClient, token: str) -> None:
        rng, pause = random.Random(), 1 / self.args.rate
        headers = {"X-CSRFToken": token, "Accept": "application/json"}
        while True:
            try:
                answer = await client.post(
                    f"/b/{SLUG}/move", data={"direction": rng.choice("wasd")}, headers=headers
                )
                status = str(answer.status_code)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            self.counts.moves += 1
            if status != "200":
                self.counts.move_errors += 1
                self.counts.move_statuses[status] = self.counts.move_statuses.get(status, 0) + 1
            await asyncio.sleep(pause)

    async def sampler(self) -> None:
        while True:
            sample = proc_sample(self.pid)
            sample["t"] = round(time.monotonic() - self.started, 1)
            sample["viewers"] = sum(v.streaming for v in self.viewers)
            sample["moves"] = self.counts.moves
            self.samples.append(sample)
            await asyncio.sleep(self.args.interval)

    async def settle(self, timeout: float = 20) -> dict[str, int]:
        """The server's figures once they stop falling (connections it is still closing)."""
        deadline = time.monotonic() + timeout
        last = proc_sample(self.pid)
        while time.monotonic() < deadline:
            await asyncio.sleep(1)
            now = proc_sample(self.pid)
            if now["fds"] >= last["fds"] and now["threads"] >= last["threads"]:
                return now
            last = now
        return last

    async def warm_up(self, clients: list[tuple[httpx.AsyncClient, dict[str, str]]]) -> None:
        """A few rounds of what the soak does (viewers joining while every mover moves at
        once), so that the server's lazily grown thread pools are in the baseline."""

        async def move(client: httpx.AsyncClient, headers: dict[str, str], d: str) -> None:
            (await client.post(f"/b/{SLUG}/move", data={"direction": d},
                               headers=headers)).raise_for_status()  # fmt: skip

        for _ in range(3):
            self.holding = True
            tasks = [asyncio.create_task(Viewer(self).run(0, "close")) for _ in range(20)]
            for direction in "da":
                await asyncio.gather(*(move(c, h, direction) for c, h in clients))
            await asyncio.sleep(0.5)
            self.holding = False
            await asyncio.gather(*tasks)
        self.counts = Counts()  # the soak's counts start now

    async def run(self) -> dict[str, Any]:
        args = self.args
        clients = [httpx.AsyncClient(base_url=self.url, timeout=30) for _ in range(args.movers)]
        tokens = []
        for client in clients:
            (await client.get("/")).raise_for_status()
            tokens.append(client.cookies["csrftoken"])
        headers = [{"X-CSRFToken": t, "Accept": "application/json"} for t in tokens]
        await self.warm_up(list(zip(clients, headers, strict=True)))
        baseline = await self.settle()
        print(f"soak: baseline after warm-up: {baseline}", file=sys.stderr, flush=True)

        self.started = time.monotonic()
        background = [asyncio.create_task(self.sampler())]
        background += [
            asyncio.create_task(self.mover(c, t)) for c, t in zip(clients, tokens, strict=True)
        ]
        slots = [asyncio.create_task(self.viewer_slot()) for _ in range(args.viewers)]
        progress = max(args.seconds / 10, 10)
        while (elapsed := time.monotonic() - self.started) < args.seconds:
            await asyncio.sleep(min(progress, args.seconds - elapsed))
            s = self.samples[-1]
            print(f"soak: {time.monotonic() - self.started:5.0f} s  rss {s['rss_kib']} KiB  "
                  f"threads {s['threads']}  fds {s['fds']}  viewers {s['viewers']}  "
                  f"moves {self.counts.moves}  opened {self.counts.opened}",
                  file=sys.stderr, flush=True)  # fmt: skip

        # Stop moving and churning; the viewers connected now stay until checked.
        self.holding, self.churning = True, False
        for task in background[1:]:
            task.cancel()
        await asyncio.gather(*background[1:], return_exceptions=True)
        for client in clients:
            await client.aclose()
        await asyncio.sleep(0.5)  # the last moves' answers are in; their events on the way
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:
            final = (await client.get(f"/b/{SLUG}/state")).json()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            live = [v for v in self.viewers if v.streaming]
            if all(v.seq == final["seq"] for v in live):
                break
            await asyncio.sleep(0.2)
        live = [v for v in self.viewers if v.streaming]
        on_final = sum(v.seq == final["seq"] for v in live)
        background[0].cancel()
        await asyncio.gather(background[0], return_exceptions=True)

        # Everyone leaves; then the server should be back where it was before the soak.
        self.holding = False
        for task in slots:
            task.cancel()
        await asyncio.gather(*slots, return_exceptions=True)
        after = await self.settle()
        return self.summary(baseline, after, final, len(live), on_final)

    def summary(
        self, baseline: dict, after: dict, final: dict, live: int, on_final: int
    ) -> dict[str, Any]:
        seconds = self.args.seconds
        window = min(60.0, seconds / 5)

        def mean_rss(start: float, end: float) -> float:
            picked = [s["rss_kib"] for s in self.samples if start <= s["t"] < end]
            return statistics.fmean(picked) if picked else float("nan")

        early, late = mean_rss(window, 2 * window), mean_rss(seconds - window, seconds + 1)
        grown = [s["threads"] for s in self.samples if window <= s["t"] < 2 * window]
        threads_ref = max([baseline["threads"], *grown])
        drift = (late - early) / early
        counts = asdict(self.counts)
        errors = {k: v for k, v in counts.items() if k not in ("opened", "left", "moves")}
        checks = {
            "rss_stable": abs(drift) <= RSS_TOLERANCE,
            "no_thread_leak": after["threads"] <= threads_ref + THREAD_SLACK,
            "no_fd_leak": after["fds"] <= baseline["fds"] + FD_SLACK,
            "viewers_on_final_state": live > 0 and on_final == live,
            "no_errors": not any(v for k, v in errors.items() if k != "move_statuses"),
        }
        return {
            "server": self.args.server,
            "url": self.url,
            "seconds": seconds,
            "viewers": self.args.viewers,
            "movers": self.args.movers,
            "rate_per_mover": self.args.rate,
            "counts": counts,
            "final_state": final,
            "viewers_at_end": live,
            "viewers_on_final": on_final,
            "rss": {
                "window_s": window,
                "early_window": [window, 2 * window],
                "early_mean_kib": round(early),
                "late_window": [seconds - window, seconds],
                "late_mean_kib": round(late),
                "drift": round(drift, 4),
                "tolerance": RSS_TOLERANCE,
            },
            "baseline": baseline,
            "threads_reference": threads_ref,
            "after": after,
            "peak": {
                key: max(s[key] for s in self.samples) for key in ("rss_kib", "threads", "fds")
            },
            "slack": {"threads": THREAD_SLACK, "fds": FD_SLACK},
            "checks": checks,
            "samples": self.samples,
        }


def report(s: dict[str, Any]) -> str:
    c, r, ok = s["counts"], s["rss"], s["checks"]

    def mark(name: str) -> str:
        return "ok" if ok[name] else "FAIL"

    moves_per_s = c["moves"] / s["seconds"]
    return "\n".join(
        [
            f"soak: {s['server']}, {s['seconds']:.0f} s, pool of {s['viewers']} viewers "
            f"({c['opened']:,} streams opened, {c['left']:,} left), {s['movers']} movers: "
            f"{c['moves']:,} moves ({moves_per_s:.1f}/s), final seq {s['final_state']['seq']}",
            f"  RSS: mean {r['early_mean_kib'] / 1024:.1f} MiB over {r['early_window'][0]:.0f}-"
            f"{r['early_window'][1]:.0f} s, {r['late_mean_kib'] / 1024:.1f} MiB over the last "
            f"{r['window_s']:.0f} s: {r['drift']:+.1%} (limit ±{r['tolerance']:.0%})  "
            f"{mark('rss_stable')}",
            f"  threads: {s['baseline']['threads']} before, up to {s['threads_reference']} in "
            f"{r['early_window'][0]:.0f}-{r['early_window'][1]:.0f} s, peak "
            f"{s['peak']['threads']}, {s['after']['threads']} after the viewers left (slack "
            f"{s['slack']['threads']})  "
            f"{mark('no_thread_leak')}",
            f"  fds: {s['baseline']['fds']} before, peak {s['peak']['fds']}, "
            f"{s['after']['fds']} after (slack {s['slack']['fds']})  {mark('no_fd_leak')}",
            f"  viewers at the end on the final state: {s['viewers_on_final']}/"
            f"{s['viewers_at_end']}  {mark('viewers_on_final_state')}",
            f"  errors: connect {c['connect_errors']}, status {c['bad_status']}, ended by the "
            f"server {c['ended_by_server']}, seq backwards {c['regressions']}, moves not 200 "
            f"{c['move_errors']} {c['move_statuses'] or ''}  {mark('no_errors')}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", choices=("daphne", "uvicorn"),
                        default=os.environ.get("SERVER", "uvicorn"))  # fmt: skip
    parser.add_argument("--seconds", type=float,
                        default=float(os.environ.get("SOAK_SECONDS", 600)))  # fmt: skip
    parser.add_argument("--viewers", type=int, default=200)
    parser.add_argument("--movers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=2.0, help="moves per second per mover")
    parser.add_argument("--interval", type=float, default=None, help="sampling period, s")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.interval is None:
        args.interval = min(5.0, args.seconds / 20)
    if why := servers.unavailable(args.server):
        print(f"soak: cannot run: {why}", file=sys.stderr)
        return 2

    # The per-client limits would refuse a soak that is one client playing many.
    os.environ.update(SNAKE_MOVES_PER_SECOND="0", SNAKE_MAX_STREAMS_PER_IP="0")
    kind = args.server  # bench/servers.py names `make run`'s configurations by their server
    tag = f"soak-{os.getpid()}"
    with servers.embedded(tag, kind) as target:
        summary = asyncio.run(Soak(args, target.url, target.pids[0]).run())
    print(report(summary))
    out = (
        args.json or servers.BENCH_VAR / f"soak-{args.server}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"soak: JSON in {out}")
    var = servers.BENCH_VAR / f"{kind}-{tag}"
    if all(summary["checks"].values()):
        shutil.rmtree(var, ignore_errors=True)
        return 0
    print(f"soak: FAILED {[k for k, v in summary['checks'].items() if not v]}; "
          f"server log in {var / 'server.log'}", file=sys.stderr)  # fmt: skip
    return 1


if __name__ == "__main__":
    sys.exit(main())
