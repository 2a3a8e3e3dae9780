"""The `make cluster` topology for real: Pushpin in front, two daphne workers, Redis, PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest

from deploy.cluster import NO_LIMITS, ROOT, Cluster, free_port_block, port_open
from tests.live import Player, needs_cluster
from tests.sse import SSEClient

# The `cluster` fixture (tests/conftest.py) skips by itself; two tests here start their own.
pytestmark = needs_cluster


def viewers(url: str, slug: str, count: int) -> list[SSEClient]:
    opened = [SSEClient(url, f"/b/{slug}/events/") for _ in range(count)]
    for viewer in opened:
        viewer.wait_for(lambda ps: len(ps) >= 1)
    return opened


def close(*clients) -> None:
    for client in clients:
        client.close()


def test_pushpin_holds_the_streams(cluster: Cluster, slug: str) -> None:
    [viewer] = viewers(cluster.url, slug, 1)
    try:
        assert viewer.headers["Content-Type"].startswith("text/event-stream")
        assert b"event: stream-open" in viewer.raw
        assert cluster.grip_check()
    finally:
        viewer.close()


def test_viewers_through_pushpin_get_moves_posted_to_either_worker(cluster, slug) -> None:
    watching = viewers(cluster.url, slug, 3)
    a, b, front = (Player(w.url) for w in (*cluster.workers, cluster.pushpin))
    try:
        a.move(slug, "d")
        for viewer in watching:
            assert viewer.wait_seq(1) == {"x": 505, "y": 150, "seq": 1}
        b.move(slug, "s")
        front.move(slug, "s")
        for viewer in watching:
            assert viewer.wait_seq(3) == {"x": 505, "y": 160, "seq": 3}
    finally:
        close(*watching, a, b, front)


def test_viewers_pushpin_holds_are_counted_from_its_stats_socket(cluster, slug) -> None:
    watching = viewers(cluster.url, slug, 3)
    try:
        for viewer in watching:
            viewer.wait_watching(3)
        for worker in cluster.workers:
            assert httpx.get(f"{worker.url}/b/{slug}/state").json()["viewers"] == 3
        close(*watching[1:])
        watching[0].wait_watching(1)
    finally:
        close(*watching)


def test_restarting_a_worker_keeps_the_viewers_pushpin_holds(cluster, slug) -> None:
    watching = viewers(cluster.url, slug, 2)
    worker = cluster.workers[0]
    try:
        worker.stop()
        worker.start()
        with Player(worker.url) as p:
            assert p.move(slug, "a").json()["seq"] == 1
        with Player(cluster.workers[1].url) as p:
            assert p.move(slug, "a").json()["seq"] == 2
        for viewer in watching:
            assert viewer.wait_seq(2) == {"x": 490, "y": 150, "seq": 2}
            assert not viewer.closed
    finally:
        close(*watching)


def test_with_redis_down_moves_still_reach_the_viewers_pushpin_holds(cluster, slug) -> None:
    watching = viewers(cluster.url, slug, 2)
    cluster.redis.stop()
    try:
        for seq, worker in enumerate(cluster.workers, start=1):
            with Player(worker.url) as p:
                assert p.move(slug, "s").json()["seq"] == seq
        for viewer in watching:
            assert viewer.wait_seq(2) == {"x": 500, "y": 160, "seq": 2}
    finally:
        cluster.redis.start()
        close(*watching)


def test_late_join_and_a_200_move_burst_converge_through_pushpin(cluster, slug) -> None:
    with Player(cluster.workers[1].url) as p:
        for direction in "ddw":
            p.move(slug, direction)
    [late] = viewers(cluster.url, slug, 1)
    assert late.positions()[0] == {"x": 510, "y": 145, "seq": 3}
    watching = [late, *viewers(cluster.url, slug, 7)]
    players = [Player(cluster.workers[i % 2].url) for i in range(20)]
    moves = ["d", "s"] * 100

    def play(i: int) -> int:
        return players[i % 20].move(slug, moves[i]).status_code

    try:
        with ThreadPoolExecutor(20) as pool:
            assert set(pool.map(play, range(200))) == {200}
        final = {"x": 1010, "y": 645, "seq": 203}
        assert players[0].board(slug) == {"slug": slug, **final}
        for viewer in watching:
            assert viewer.wait_seq(203) == final
            seqs = [p["seq"] for p in viewer.positions()]
            assert seqs == sorted(set(seqs)), "a viewer got an older state after a newer one"
    finally:
        close(*watching, *players)


@pytest.mark.skipif(
    not list(Path("/usr/lib/postgresql").glob("*/bin/postgres")),
    reason="SKIPPED POSTGRESQL TEST: no PostgreSQL (apt-get install postgresql; .ci/run does)",
)
def test_50_concurrent_moves_over_two_workers_on_postgresql(tmp_path: Path, slug: str) -> None:
    with Cluster(
        port=0, workers=2, postgres=True, workdir=tmp_path / "c", var_dir=tmp_path / "var",
        env=NO_LIMITS,
    ) as pg:  # fmt: skip
        assert pg.database_url.startswith("postgresql://")
        players = [Player(pg.workers[i % 2].url) for i in range(50)]
        gate = threading.Barrier(50)

        def play(p: Player) -> int:
            gate.wait()
            return p.move(slug, "d").status_code

        try:
            with ThreadPoolExecutor(50) as pool:
                assert list(pool.map(play, players)) == [200] * 50
            assert players[0].board(slug) == {"slug": slug, "x": 750, "y": 150, "seq": 50}
        finally:
            close(*players)
        # Viewers do not reach the database: 20 streams served by the workers themselves
        # (not through Pushpin) leave no connection open each.
        direct = [v for w in pg.workers for v in viewers(w.url, slug, 10)]
        with psycopg.connect(pg.database_url) as conn:
            [(others,)] = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid()"
            ).fetchall()
        close(*direct)
        assert others < 5, f"{others} database connections for 20 streams"


def test_make_cluster_starts_everything_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    port = free_port_block(12)
    env = {**os.environ, "PORT": str(port), "WORKERS": "2", "SNAKE_VAR_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "deploy.cluster"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        for line in proc.stdout:
            if line.startswith(f"snake cluster: open http://127.0.0.1:{port}/"):
                break
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    for offset in (0, 2, 5, 10, 11):  # entry, GRIP publish, Redis, both workers
        assert not port_open(port + offset), f"port {port + offset} still open after Ctrl-C"
