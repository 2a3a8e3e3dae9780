"""Delivery across workers through a real Redis, and what happens when Redis or the proxy dies."""

from __future__ import annotations

from tests.live import Player, Server, free_port
from tests.sse import SSEClient


def opened(url: str, slug: str) -> SSEClient:
    viewer = SSEClient(url, f"/b/{slug}/events/")
    viewer.wait_for(lambda ps: len(ps) >= 1)
    return viewer


def test_a_move_on_one_worker_reaches_viewers_on_both(workers, slug) -> None:
    a, b = workers
    on_a, on_b = opened(a.url, slug), opened(b.url, slug)
    player_a, player_b = Player(a.url), Player(b.url)
    try:
        player_b.move(slug, "d")
        assert on_a.wait_seq(1) == {"x": 505, "y": 150, "seq": 1}
        assert on_b.wait_seq(1) == {"x": 505, "y": 150, "seq": 1}
        player_a.move(slug, "s")
        assert on_b.wait_seq(2) == {"x": 505, "y": 155, "seq": 2}
    finally:
        for client in (on_a, on_b, player_a, player_b):
            client.close()


def test_redis_outage_loses_no_move_and_fan_out_resumes(workers, redis, slug) -> None:
    a, b = workers
    on_a = opened(a.url, slug)
    player_a, player_b = Player(a.url), Player(b.url)
    try:
        player_b.move(slug, "d")
        on_a.wait_seq(1)
        redis.stop()
        # The move commits, so it is answered 200 and reaches this worker's own viewers.
        for seq in (2, 3, 4):
            response = player_a.move(slug, "d")
            assert response.status_code == 200 and response.json()["seq"] == seq
            assert on_a.wait_seq(seq)["seq"] == seq
        assert player_b.move(slug, "d").status_code == 200  # seq 5: only B's viewers see it
        assert a.logs().count("Redis is down") == 1, "the outage is logged once, not per move"
        redis.start()
        # Without a restart, A's listener comes back, re-reads the state (seq 5) and B's moves
        # reach A's viewers again.
        assert on_a.wait_seq(5, timeout=20)["seq"] == 5
        player_b.move(slug, "s")
        assert on_a.wait_seq(6) == {"x": 525, "y": 155, "seq": 6}
        assert "Redis is back" in a.logs()
    finally:
        for client in (on_a, player_a, player_b):
            client.close()


def test_a_dead_grip_proxy_does_not_stop_moves_or_local_viewers(tmp_path, slug) -> None:
    # Nothing listens on the GRIP publish port: every publish to it fails.
    worker = Server(tmp_path, {"GRIP_URL": f"http://127.0.0.1:{free_port()}"})
    worker.start()
    try:
        viewer, player = opened(worker.url, slug), Player(worker.url)
        for seq in (1, 2):
            assert player.move(slug, "a").json()["seq"] == seq
            assert viewer.wait_seq(seq)["seq"] == seq
        viewer.close()
        player.close()
        assert worker.logs().count("GRIP proxy is down") == 1
    finally:
        worker.stop()
