"""bench/cpu.py against a real server: every request kind answered, measured and tabled."""

from __future__ import annotations

from pytest import approx

from bench import cpu
from bench.table import cpu_markdown
from tests.live import Server


def test_cpu_per_request_of_every_kind(server: Server) -> None:
    assert server.proc is not None
    row = {"kind": server.kind, "result": cpu.measure(server.url, [server.proc.pid], requests=200)}
    summary = cpu.summarise([row])
    table = cpu_markdown(summary, cpu.LABELS).splitlines()
    # One row per request kind, each with the server's CPU figure, and above zero: the server
    # did the work, so a zero means /proc was read wrongly (wrong fields, wrong pid). 200: /proc
    # counts 10 ms ticks, and 20 GETs of /state (0.33 ms each here) fit in one.
    assert len(table) == 2 + len(cpu.KINDS)
    for line, kind in zip(table[2:], cpu.KINDS, strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[:2] == [server.kind, cpu.LABELS[kind]]
        assert float(cells[2]) > 0
        assert summary[server.kind][kind]["server_ms"]["median"] == approx(
            float(cells[2]), abs=0.01
        )
