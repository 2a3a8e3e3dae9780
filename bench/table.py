"""Figures out of bench.fanout / bench.burst summaries, ratios to the floor, markdown tables.

Each configuration runs several times (fresh starts); a cell is the median over its runs with
the min–max, and a ratio to the floor is taken per run against that run's floor (the runs take
turns, so each is paired with the floor measured just before it) and then summarised the same
way: `25.8 (24.1–27.0) ×2.3 (2.1–2.6)`.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

# name -> (column header, ratio to the floor shown, digits); per pace, then per start
PHASE_COLUMNS = {
    "last_p50": ("last viewer p50 ms", True, 1),
    "last_p95": ("last p95 ms", True, 1),
    "last_p99": ("last p99 ms", True, 1),
    "first_p50": ("first p50 ms", True, 1),
    "median_p50": ("median p50 ms", True, 1),
    "post_p50": ("POST p50 ms", True, 1),
    "others": ("others % of a core", False, 0),
}
START_COLUMNS = {
    "connect_p50": ("connect p50 ms", True, 1),
    "connect_p99": ("connect p99 ms", True, 1),
    "errors": ("errors", False, 0),
    "rss_mib": ("RSS MiB", True, 0),
    "threads": ("threads", True, 0),
    "kib_per_viewer": ("KiB/viewer", True, 1),
}

LEGEND = (
    "latency: POST start → a viewer saw the move's seq (first/median/last viewer per move; p50,"
    " p95, p99 nearest rank over the moves: over 30 moves p95 is the 2nd slowest, p99 the"
    " slowest); one untimed warm-up move first, then each pace's moves on the same viewers, the"
    " order swapped every other run. others: CPU every other process used during those moves"
    " (/proc/stat minus the server's and the load client's), % of one core: more than a few %"
    " means a disturbed run. connect: TCP connect → first event. Viewers are SSE streams, but"
    " websockets for tutorial. RSS/threads: the server processes summed after the moves"
    " (cluster: both daphne workers + Pushpin's processes; Redis not counted, so it shows in"
    " others); KiB/viewer: RSS growth from before the viewers connected to all connected. final"
    " state: viewers at the final seq, ok when all are, none went backwards and GET /state"
    " agrees, in every run."
)
BURST_LEGEND = (
    "settle: last accepted move's answer → the last viewer got the final seq (GET /state after"
    " the burst); 0 when every viewer had it before that answer arrived, – when some never did"
    " (then its final state says WRONG). (×r): r times the {floor} figure of the same run."
    " others: as in the fan-out table, during the burst."
)


def figures(s: dict[str, Any]) -> dict[str, Any]:
    """One fanout run's figures: {"start": {...}, "phases": {pace: {...}}, "final", "correct"}."""
    server = s["server"]
    after = server.get("after", server.get("connected", {"rss_kib": 0, "threads": 0}))
    grown = server["connected"]["rss_kib"] - server["before"]["rss_kib"]
    correct = (
        s["final_state"] == s["connected"] == s["live"]
        and s["backwards"] == 0
        and s["state"]["seq"] == s["final_seq"]
    )
    start = {
        "connect_p50": s["connect_ms"]["p50"],
        "connect_p99": s["connect_ms"]["p99"],
        "errors": sum(s["errors"].values()),
        "rss_mib": after["rss_kib"] / 1024,
        "threads": after["threads"],
        "kib_per_viewer": grown / s["connected"] if s["connected"] else math.nan,
    }
    phases = {}
    for name, ph in s["phases"].items():
        lat = ph["latency_ms"]
        phases[name] = {
            "last_p50": lat["last"]["p50"],
            "last_p95": lat["last"]["p95"],
            "last_p99": lat["last"]["p99"],
            "first_p50": lat["first"]["p50"],
            "median_p50": lat["median"]["p50"],
            "post_p50": ph["post_ms"]["p50"],
            "others": ph["others_core_pct"],
            "moves": ph["moves"],
        }
    final = f"{s['final_state']:,}/{s['viewers']:,} {'ok' if correct else 'WRONG'}"
    return {"start": start, "phases": phases, "final": final, "correct": correct}


def over(row: dict[str, Any], ref: dict[str, Any], columns: dict[str, Any]) -> dict[str, float]:
    out = {}
    for name, (_, ratio, _) in columns.items():
        if ratio and isinstance(ref.get(name), float | int) and ref[name]:
            out[name] = row[name] / ref[name]
    return out


def ratios(row: dict[str, Any], floor: dict[str, Any] | None) -> dict[str, Any]:
    """A run's figures over its floor's (same N, same run), column by column."""
    if floor is None:
        return {}
    phases = {
        name: over(ph, floor["phases"][name], PHASE_COLUMNS)
        for name, ph in row["phases"].items()
        if name in floor["phases"]
    }
    return {"start": over(row["start"], floor["start"], START_COLUMNS), "phases": phases}


def number(value: float, digits: int) -> str:
    if math.isnan(value):
        return "–"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.{digits}f}"


def spread(values: list[float], digits: int, prefix: str = "") -> str:
    """median (min–max), or the one value when they agree."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "–"
    mid, low, high = (number(f(values), digits) for f in (statistics.median, min, max))
    return prefix + (mid if low == high else f"{mid} ({low}–{high})")


def cell(values: list[float], ratios: list[float], digits: int) -> str:
    text = spread(values, digits)
    return f"{text} {spread(ratios, 1, '×')}" if ratios else text


def groups(rows: list[dict[str, Any]]) -> dict[tuple[int, str], list[dict[str, Any]]]:
    """(viewers, kind) -> its runs, in the order first measured."""
    out: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault((r["viewers"], r["kind"]), []).append(r)
    return out


def name(kind: str, runs: list[dict[str, Any]], measured: list[dict[str, Any]]) -> str:
    return kind if len(measured) == len(runs) else f"{kind} ({len(measured)}/{len(runs)} runs)"


def table(head: list[str], lines: list[list[str]]) -> str:
    rule = "|" + "---|" * len(head)
    return "\n".join(
        ["| " + " | ".join(head) + " |", rule, *("| " + " | ".join(c) + " |" for c in lines)]
    )


def column_cells(
    runs: list[dict[str, Any]], part: str, columns: dict[str, Any], pace: str | None = None
) -> list[str]:
    def pick(r: dict[str, Any], key: str) -> dict[str, Any]:
        got: dict[str, Any] = r.get(key, {}).get(part, {})
        return dict(got.get(pace, {})) if pace else got

    cells = []
    for col, (_, ratio, digits) in columns.items():
        values = [pick(r, "figures")[col] for r in runs if col in pick(r, "figures")]
        shown = [pick(r, "ratio")[col] for r in runs if col in pick(r, "ratio")] if ratio else []
        cells.append(cell(values, shown, digits))
    return cells


def markdown(rows: list[dict[str, Any]], pace: str | None = None) -> str:
    """One pace's latency table, or with pace None the per-start table (connect, RSS, final).

    rows: {"kind", "viewers", "run", "figures", "ratio"} or {"kind", "viewers", "skipped"}."""
    columns = PHASE_COLUMNS if pace else START_COLUMNS
    head = ["config", "viewers", *(h for h, _, _ in columns.values())]
    head += ["moves"] if pace else ["final state"]
    lines = []
    for (viewers, kind), runs in groups(rows).items():
        measured = [r for r in runs if "figures" in r]
        if not measured:
            lines.append(
                [kind, f"{viewers:,}", f"skipped: {runs[0]['skipped']}"] + [""] * (len(head) - 3)
            )
            continue
        if pace:
            cells = column_cells(measured, "phases", columns, pace)
            cells.append(spread([r["figures"]["phases"][pace]["moves"] for r in measured], 0))
        else:
            cells = column_cells(measured, "start", columns)
            cells.append("; ".join(dict.fromkeys(r["figures"]["final"] for r in measured)))
        lines.append([name(kind, runs, measured), f"{viewers:,}", *cells])
    return table(head, lines)


def burst_figures(b: dict[str, Any]) -> dict[str, Any]:
    vs = b["viewer_summary"]
    ok = vs["final_state"] == b["live"] == b["connected"] and b["reached_final"] == b["live"]
    return {
        "moves_per_s": b["accepted_per_s"],
        "post_p50": b["post_ms"]["p50"],
        "post_p99": b["post_ms"]["p99"],
        "non_200": b["posts"] - b["accepted"],
        # ≤ 0 (every viewer had the final seq before its answer arrived) shows as 0
        "settle": max(0.0, b["settle_ms"]) if b["reached_final"] == b["live"] else math.nan,
        "rss_mib": b["server"]["after"]["rss_kib"] / 1024,
        "others": b["others_core_pct"],
        "final": f"{vs['final_state']:,}/{b['viewers']:,} {'ok' if ok else 'WRONG'}",
    }


BURST_COLUMNS = {
    "moves_per_s": ("accepted moves/s", True, 1),
    "post_p50": ("POST p50 ms", True, 1),
    "post_p99": ("POST p99 ms", True, 1),
    "non_200": ("non-200", False, 0),
    "settle": ("settle ms", False, 0),
    "rss_mib": ("RSS MiB", False, 0),
    "others": ("others % of a core", False, 0),
}


def burst_markdown(rows: list[dict[str, Any]]) -> str:
    """rows: {"kind", "viewers", "run", "figures", "ratio"} or {"kind", "skipped"}."""
    head = ["config", "viewers", "clients × s", *(h for h, _, _ in BURST_COLUMNS.values())]
    head.append("final state")
    lines = []
    for (viewers, kind), runs in groups(rows).items():
        measured = [r for r in runs if "figures" in r]
        if not measured:
            lines.append(
                [kind, f"{viewers:,}", f"skipped: {runs[0]['skipped']}"] + [""] * (len(head) - 3)
            )
            continue
        b = measured[0]["result"]
        cells = [name(kind, runs, measured), f"{viewers:,}", f"{b['clients']} × {b['seconds']:g}"]
        cells += column_cells(measured, "all", BURST_COLUMNS)
        cells.append("; ".join(dict.fromkeys(r["figures"]["all"]["final"] for r in measured)))
        lines.append(cells)
    return table(head, lines)


CPU_LEGEND = (
    "server CPU: utime+stime of the server's processes (/proc/<pid>/stat) over {requests}"
    " sequential requests on one keep-alive connection, after {warmup} warm-up ones, per"
    " request; wall: the client's time per request; median (min–max) over {rounds} fresh starts"
    " of each configuration. others: the CPU every other process on the machine used meanwhile"
    " (/proc/stat busy time minus the server's and this client's), % of one core: more than a"
    " few % means the run was disturbed."
)


def spread_cell(f: dict[str, float], digits: int) -> str:
    low, mid, high = (f"{f[k]:.{digits}f}" for k in ("min", "median", "max"))
    return mid if low == high else f"{mid} ({low}–{high})"


def cpu_markdown(summary: dict[str, dict[str, Any]], labels: dict[str, str]) -> str:
    """summary: bench.cpu.summarise()'s; labels: request kind -> what the row names."""
    head = ["config", "request", "server CPU ms/request", "wall ms/request", "others % of a core"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for config, s in summary.items():
        if not s["runs"]:
            lines.append(f"| {config} | skipped: {s['skipped'][0]} |" + " |" * (len(head) - 2))
            continue
        name = config if s["runs"] == s["rounds"] else f"{config} ({s['runs']}/{s['rounds']} runs)"
        for kind, label in labels.items():
            f = s[kind]
            cells = [name, label, spread_cell(f["server_ms"], 2), spread_cell(f["wall_ms"], 2)]
            lines.append("| " + " | ".join([*cells, spread_cell(f["others_core_pct"], 0)]) + " |")
    return "\n".join(lines)
