"""CPU time from /proc: a process's, the whole machine's, and what everyone else used meanwhile.

bench/cpu.py (per request kind), bench/fanout.py (per pacing mode) and bench/burst.py take a
Sample before and after what they measure, so that each figure comes with the CPU every other
process on the machine used in between, as % of one core: a disturbed run shows.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")  # /proc's unit: clock ticks per second


def process_ticks(pid: int | str, children: bool = False) -> int:
    """utime+stime of one process, all its threads (0 once it has exited); with children, plus
    the cutime+cstime of its children that have exited and been waited for."""
    with contextlib.suppress(OSError):
        # pid (comm) state ppid ...: comm may hold spaces; utime..cstime are fields 14-17
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return sum(int(v) for v in fields[11 : 15 if children else 13])
    return 0


def busy_ticks() -> int:
    """Every CPU's non-idle time from /proc/stat (guest time is already in user)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return user + nice + system + irq + softirq + steal


@dataclass(frozen=True)
class Sample:
    server: int
    client: int
    busy: int
    t: float

    @classmethod
    def now(cls, pids: Iterable[int], helpers: Iterable[int] = ()) -> Sample:
        """pids: the server's; helpers: the load client's own running child processes (this
        process, and its children that finished in between, always count as the client)."""
        server = sum(process_ticks(pid) for pid in pids)
        client = process_ticks("self", children=True) + sum(process_ticks(p) for p in helpers)
        return cls(server, client, busy_ticks(), time.monotonic())


def others_core_pct(before: Sample, after: Sample) -> float:
    """CPU everyone but the server and the client used between the samples, % of one core."""
    wall = after.t - before.t
    others = after.busy - before.busy - (after.server - before.server)
    others -= after.client - before.client
    # Per-process and /proc/stat times are sampled apart: a quiet machine may come out < 0.
    return max(0.0, others / TICK / wall * 100) if wall > 0 else 0.0
