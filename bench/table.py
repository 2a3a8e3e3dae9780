"""Figures out of bench.fanout / bench.burst summaries, ratios to the floor, markdown tables."""

from __future__ import annotations

import math
from typing import Any

# name -> (column header, ratio to the floor shown)
COLUMNS = {
    "last_p50": ("last viewer p50 ms", True),
    "last_p99": ("last p99 ms", True),
    "first_p50": ("first p50 ms", True),
    "median_p50": ("median p50 ms", True),
    "connect_p50": ("connect p50 ms", True),
    "connect_p99": ("connect p99 ms", True),
    "errors": ("errors", False),
    "rss_mib": ("RSS MiB", True),
    "threads": ("threads", True),
    "kib_per_viewer": ("KiB/viewer", True),
    "final": ("final state", False),
}


LEGEND = (
    "latency: POST start → a viewer saw the move's seq (first/median/last viewer per move, p50 or"
    " p99 over the moves); connect: TCP connect → first event. Viewers are SSE streams, but"
    " websockets for tutorial (one Channels consumer each, one group_send per move). RSS/threads:"
    " the server processes summed after the moves (cluster: both daphne workers + pushpin,"
    " condure, pushpin-proxy, pushpin-handler, zurl; Redis not counted); KiB/viewer: RSS growth"
    " from before the viewers connected to all connected. final state: viewers at the final seq,"
    " ok when all are, none went backwards and GET /state agrees."
)
BURST_LEGEND = (
    "settle: last accepted move's answer → the last viewer got the final seq (GET /state after"
    " the burst); ≤ 0 when every viewer had it before that answer arrived. (×r): r times the"
    " floor's figure."
)


def figures(s: dict[str, Any]) -> dict[str, Any]:
    """The table's figures of one fanout run (server figures: after the moves, viewers on)."""
    lat, server = s["latency_ms"], s["server"]
    after = server.get("after", server.get("connected", {"rss_kib": 0, "threads": 0}))
    grown = server["connected"]["rss_kib"] - server["before"]["rss_kib"]
    correct = (
        s["final_state"] == s["connected"] == s["live"]
        and s["backwards"] == 0
        and s["state"]["seq"] == s["final_seq"]
    )
    return {
        "last_p50": lat["last"]["p50"],
        "last_p99": lat["last"]["p99"],
        "first_p50": lat["first"]["p50"],
        "median_p50": lat["median"]["p50"],
        "connect_p50": s["connect_ms"]["p50"],
        "connect_p99": s["connect_ms"]["p99"],
        "errors": sum(s["errors"].values()),
        "rss_mib": after["rss_kib"] / 1024,
        "threads": after["threads"],
        "kib_per_viewer": grown / s["connected"] if s["connected"] else math.nan,
        "final": f"{s['final_state']}/{s['viewers']} {'ok' if correct else 'WRONG'}",
        "correct": correct,
    }


def ratios(row: dict[str, Any], floor: dict[str, Any] | None) -> dict[str, float]:
    if floor is None:
        return {}
    out = {}
    for name, (_, ratio) in COLUMNS.items():
        if ratio and isinstance(floor.get(name), float | int) and floor[name]:
            out[name] = row[name] / floor[name]
    return out


def cell(value: Any, ratio: float | None) -> str:
    if isinstance(value, float):
        text = "–" if math.isnan(value) else f"{value:.1f}" if value < 1000 else f"{value:,.0f}"
    else:
        text = str(value)
    return text if ratio is None or math.isnan(ratio) else f"{text} (×{ratio:.1f})"


def markdown(rows: list[dict[str, Any]]) -> str:
    """rows: {"kind", "viewers", "figures", "ratio"} or {"kind", "viewers", "skipped"}."""
    head = ["config", "viewers", *(h for h, _ in COLUMNS.values())]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if "skipped" in r:
            cells = [f"skipped: {r['skipped']}"] + [""] * (len(COLUMNS) - 1)
        else:
            f, q = r["figures"], r["ratio"]
            cells = [cell(f[name], q.get(name)) for name in COLUMNS]
        lines.append("| " + " | ".join([r["kind"], f"{r['viewers']:,}", *cells]) + " |")
    return "\n".join(lines)


def settle(b: dict[str, Any]) -> str:
    if b["reached_final"] != b["live"]:
        return "not all (timeout)"
    return f"{b['settle_ms']:.0f}" if b["settle_ms"] >= 0.5 else "≤ 0"


def burst_markdown(rows: list[dict[str, Any]]) -> str:
    floor = next((r["result"] for r in rows if r["kind"] == "floor" and "result" in r), None)

    def vs_floor(value: float, path: tuple[str, ...]) -> str:
        ref: Any = floor
        for key in path:
            ref = ref[key] if ref is not None else None
        return cell(value, value / ref if ref else None)

    head = ["config", "viewers", "clients × s", "accepted moves/s", "POST p50 ms", "POST p99 ms"]
    head += ["non-200", "settle ms", "final state", "RSS MiB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['kind']} | | skipped: {r['skipped']} |" + " |" * (len(head) - 3))
            continue
        b = r["result"]
        vs = b["viewer_summary"]
        ok = vs["final_state"] == b["live"] == b["connected"] and b["reached_final"] == b["live"]
        cells = [
            r["kind"],
            f"{b['viewers']:,}",
            f"{b['clients']} × {b['seconds']:g}",
            vs_floor(b["accepted_per_s"], ("accepted_per_s",)),
            vs_floor(b["post_ms"]["p50"], ("post_ms", "p50")),
            vs_floor(b["post_ms"]["p99"], ("post_ms", "p99")),
            str(b["posts"] - b["accepted"]),
            settle(b),
            f"{vs['final_state']}/{b['viewers']} at seq {b['state']['seq']} "
            + ("ok" if ok else "WRONG"),
            f"{b['server']['after']['rss_kib'] / 1024:.0f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
