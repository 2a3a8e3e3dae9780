"""`manage.py board` against running servers: make run's (no Redis) and the cluster's."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.cluster import NO_LIMITS, Cluster
from tests.live import ROOT, Player, Server, needs_cluster
from tests.sse import SSEClient


def board(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "board", *args],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def said(done: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def of_server(server: Server) -> dict[str, str]:
    """The command's environment on the server's machine: its database and its address."""
    keep = ("SNAKE_VAR_DIR", "DATABASE_URL")
    return {**{k: server.env[k] for k in keep}, "SNAKE_SERVER_URL": server.url}


def freeze_reset_unfreeze(env: dict[str, str], url: str, mover: str, slug: str) -> None:
    with Player(mover) as p, SSEClient(url, f"/b/{slug}/events/") as viewer:
        assert p.move(slug, "d").status_code == 200
        viewer.wait_seq(1)
        frozen = said(board(env, "freeze", slug))
        assert frozen == {"slug": slug, "x": 505, "y": 150, "seq": 1, "title": slug, "frozen": True}
        assert viewer.wait_frozen(True) == [False, True]
        refused = p.move(slug, "d")
        assert refused.status_code == 423 and "frozen" in refused.json()["error"]
        assert said(board(env, "reset", slug))["seq"] == 2
        assert viewer.wait_seq(2) == {"x": 500, "y": 150, "seq": 2}
        assert said(board(env, "unfreeze", slug))["frozen"] is False
        viewer.wait_frozen(False)
        assert p.move(slug, "s").json() == {"slug": slug, "x": 500, "y": 155, "seq": 3}


def test_make_runs_viewers_see_freeze_reset_unfreeze_through_its_loopback_endpoint(
    server: Server, slug: str
) -> None:
    freeze_reset_unfreeze(of_server(server), server.url, server.url, slug)


@needs_cluster
def test_the_clusters_viewers_see_them_through_redis_and_pushpin(cluster: Cluster, slug) -> None:
    freeze_reset_unfreeze(cluster.env, cluster.url, cluster.workers[1].url, slug)


def test_with_no_server_the_change_is_stored_and_the_command_says_so(tmp_path, slug) -> None:
    server = Server(tmp_path)  # migrated, never started
    done = board({**of_server(server)}, "freeze", slug)
    assert said(done)["frozen"] is True
    assert "no server answered" in done.stderr and "stored" in done.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("freeze",), "name the board"),
        (("freeze", "Bad Slug"), "name the board"),
        (("prune",), "prune needs --days N"),
        (("prune", "--days", "0"), "prune needs --days N"),
        (("melt", "main"), "invalid choice: 'melt'"),
    ],
)
def test_bad_arguments_are_refused_saying_the_fix(tmp_path, args, says) -> None:
    done = board(of_server(Server(tmp_path)), *args)
    assert done.returncode != 0 and says in done.stderr


def test_prune_deletes_the_boards_idle_n_days_that_no_one_watches(server: Server, slug) -> None:
    env = of_server(server)
    idle, watched, fresh = (f"{slug[:30]}-{n}" for n in ("idle", "seen", "new"))
    with Player(server.url) as p:
        for name in (idle, watched, fresh):
            p.move(name, "d")
    age = "UPDATE snake_board SET updated_at = datetime('now', '-40 days') WHERE slug IN (?, ?)"
    with sqlite3.connect(server.workdir / "db.sqlite3") as db:
        db.execute(age, (idle, watched))
    with SSEClient(server.url, f"/b/{watched}/events/") as viewer:
        viewer.wait_seq(1)
        kept = said(board(env, "prune", "--days", "30"))
    assert idle in kept["pruned"] and watched not in kept["pruned"] and fresh not in kept["pruned"]
    assert watched in kept["kept_watched"]
    with Player(server.url) as p:
        assert p.state(idle)["seq"] == 0 and p.state(watched)["seq"] == 1


@needs_cluster
@pytest.mark.skipif(
    not list(Path("/usr/lib/postgresql").glob("*/bin/postgres")),
    reason="SKIPPED POSTGRESQL TEST: no PostgreSQL (apt-get install postgresql; .ci/run does)",
)
def test_on_postgresql_too(tmp_path: Path, slug: str) -> None:
    # PostgreSQL refuses FOR UPDATE across an outer join (the board's logo): SQLite ignores it.
    with Cluster(
        port=0, workers=2, postgres=True, workdir=tmp_path / "c", var_dir=tmp_path / "var",
        env=NO_LIMITS,
    ) as pg:  # fmt: skip
        freeze_reset_unfreeze(pg.env, pg.url, pg.workers[1].url, slug)
