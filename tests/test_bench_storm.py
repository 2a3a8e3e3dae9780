"""bench's connect and restart storms against a real uvicorn: every viewer counted, each way."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal

from bench import servers, storm

VIEWERS = 20


def options(back_timeout: float = 60) -> argparse.Namespace:
    # Generous waits only: a slow box makes the run longer, never the test fail.
    return argparse.Namespace(open_timeout=60, back_timeout=back_timeout, retry_ms=3000)


def test_every_viewer_opens_and_is_back_on_the_new_seq_after_a_restart() -> None:
    with servers.STARTERS["uvicorn"]("storm-test") as target:
        first = target.pids[0]
        result = storm.storm(target, VIEWERS, options())
        assert target.pids != [first]  # restarted: another process serves now
    got = storm.figures(result)
    assert got["open"]["opened"] == VIEWERS and got["open"]["errors"] == 0, result
    assert result["restart"]["back"] == VIEWERS and got["restart"]["errors"] == 0, result
    assert result["restart"]["seq"] == result["client"]["base_seq"] + 1
    # Each viewer lost its stream to the kill and came back on a new one of its own.
    assert result["client"]["streams_lost"] == VIEWERS
    assert result["client"]["attempts"] >= VIEWERS
    table = storm.markdown([{"kind": "uvicorn", "viewers": VIEWERS, "figures": got}], "restart")
    cells = [c.strip() for c in table.splitlines()[2].strip("|").split("|")]
    assert cells[:2] == ["uvicorn", str(VIEWERS)] and cells[5] == "0", table


def test_a_viewer_that_cannot_reconnect_counts_as_an_error() -> None:
    with servers.STARTERS["uvicorn"]("storm-test") as target:
        served = target.pids

        def kill_only() -> None:  # a restart onto nothing: every reconnect is refused
            with contextlib.suppress(ProcessLookupError):
                os.killpg(served[0], signal.SIGKILL)

        target.restart = kill_only
        result = storm.storm(target, VIEWERS, options(back_timeout=8))
    got = storm.figures(result)
    assert got["open"]["opened"] == VIEWERS
    assert result["restart"]["back"] == 0 and got["restart"]["errors"] == VIEWERS, result
    assert got["restart"]["failed"] >= VIEWERS  # refused reconnects, retried
    assert result["client"]["failed_attempts"]["connect"] >= VIEWERS
