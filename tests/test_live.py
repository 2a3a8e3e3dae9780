"""The HTTP contract against a real daphne, with real SSE bytes."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.live import Player, Server
from tests.sse import SSEClient


def viewer(server: Server, slug: str) -> SSEClient:
    client = SSEClient(server.url, f"/b/{slug}/events/")
    client.wait_for(lambda ps: len(ps) >= 1)  # subscribed: its first event has arrived
    return client


def test_stream_headers_and_first_event_is_the_current_state(server, player, slug) -> None:
    player.move(slug, "d")
    v = SSEClient(server.url, f"/b/{slug}/events/")
    try:
        assert v.status == 200
        assert v.headers["Content-Type"].startswith("text/event-stream")
        assert v.headers["Cache-Control"] == "no-cache"
        assert v.headers["X-Accel-Buffering"] == "no"
        first = v.wait_for(lambda ps: len(ps) >= 1)[0]
        assert first == {"x": 505, "y": 150, "seq": 1}
        assert b"event: stream-open\n" in v.raw
        assert b'event: position\ndata: <div id="logo" ' in v.raw
        assert b'event: board\ndata: <strong id="title" ' in v.raw
    finally:
        v.close()


def test_a_move_reaches_a_viewer_as_a_position_event(server, player, slug) -> None:
    v = viewer(server, slug)
    try:
        assert player.move(slug, "S").json() == {"slug": slug, "x": 500, "y": 155, "seq": 1}
        assert v.wait_seq(1) == {"x": 500, "y": 155, "seq": 1}
        assert b'style="left: 500px; top: 155px"' in v.raw
    finally:
        v.close()


def test_late_joiner_sees_the_latest_state_first(server, player, slug) -> None:
    for direction in "ddw":
        player.move(slug, direction)
    late = viewer(server, slug)
    try:
        assert late.positions()[0] == {"x": 510, "y": 145, "seq": 3}
    finally:
        late.close()


def test_the_state_and_every_stream_say_how_many_watch(server, player, slug) -> None:
    viewers = [viewer(server, slug) for _ in range(3)]
    try:
        assert player.state(slug)["viewers"] == 3
        assert [v.wait_watching(3)[-1] for v in viewers] == [3, 3, 3]
        viewers.pop().close()
        assert [v.wait_watching(2)[-1] for v in viewers] == [2, 2]
        assert player.state(slug)["viewers"] == 2
        assert player.move(slug, "d").json() == {"slug": slug, "x": 505, "y": 150, "seq": 1}
    finally:
        for v in viewers:
            v.close()


def test_50_concurrent_moves_from_different_clients_all_count(server, slug) -> None:
    players = [Player(server.url) for _ in range(50)]
    before = players[0].board(slug)["seq"]
    gate = threading.Barrier(50)

    def play(p: Player) -> int:
        gate.wait()
        return p.move(slug, "d").status_code

    with ThreadPoolExecutor(50) as pool:
        codes = list(pool.map(play, players))
    assert codes == [200] * 50
    assert players[0].board(slug) == {"slug": slug, "x": 750, "y": 150, "seq": before + 50}
    for p in players:
        p.close()


def test_a_200_move_burst_converges_on_every_viewer(server, slug) -> None:
    viewers = [viewer(server, slug) for _ in range(8)]
    players = [Player(server.url) for _ in range(20)]
    moves = ["d", "s"] * 100  # 100 right, 100 down: never touches a wall

    def play(i: int) -> None:
        p = players[i % len(players)]
        assert p.move(slug, moves[i]).status_code == 200

    try:
        with ThreadPoolExecutor(20) as pool:
            list(pool.map(play, range(len(moves))))
        final = players[0].board(slug)
        assert final == {"slug": slug, "x": 1000, "y": 650, "seq": 200}
        for v in viewers:
            seen = v.wait_seq(200)
            assert seen == {"x": 1000, "y": 650, "seq": 200}
            seqs = [p["seq"] for p in v.positions()]
            assert seqs == sorted(set(seqs)), "a viewer got an older state after a newer one"
    finally:
        for v in viewers:
            v.close()
        for p in players:
            p.close()


def test_bad_input_is_4xx_changes_nothing_and_publishes_nothing(server, player, slug) -> None:
    player.move(slug, "d")
    v = viewer(server, slug)
    http = player.http
    try:
        for data in ({}, {"direction": "x"}, {"direction": "d" * 500}):
            r = http.post(f"/b/{slug}/move", data=data, headers={"X-CSRFToken": player.token})
            assert r.status_code == 400 and "W, A, S, D" in r.text
        # Past the 1 KiB body cap it is 413 before Django reads it (snake/bodylimit.py).
        r = http.post(f"/b/{slug}/move", data={"direction": "d" * 5000})
        assert r.status_code == 413
        r = player.move(slug, "up-ish")
        assert r.status_code == 400 and "W, A, S, D" in r.json()["error"]
        with httpx.Client(base_url=server.url) as stranger:  # no CSRF cookie or header
            assert stranger.post(f"/b/{slug}/move", data={"direction": "d"}).status_code == 403
        assert http.get(f"/b/{slug}/move").status_code == 405
        assert http.post("/b/Bad_Slug/move", data={"direction": "d"}).status_code == 404
        assert player.board(slug) == {"slug": slug, "x": 505, "y": 150, "seq": 1}
        # Nothing was published: the next event this viewer sees is the next good move.
        player.move(slug, "s")
        assert [p["seq"] for p in v.wait_for(lambda ps: ps[-1]["seq"] >= 2)] == [1, 2]
    finally:
        v.close()


def test_the_position_survives_a_server_restart(tmp_path, slug) -> None:
    daphne = Server(tmp_path)
    daphne.start()
    try:
        p = Player(daphne.url)
        p.move(slug, "a")
        p.close()
        daphne.stop()
        daphne.start()
        p = Player(daphne.url)
        assert p.board(slug) == {"slug": slug, "x": 495, "y": 150, "seq": 1}
        p.close()
    finally:
        daphne.stop()


def test_static_files_are_served_by_the_app(server) -> None:
    for path in ("/static/vendor/htmx.min.js", "/static/vendor/sse.min.js",
                 "/static/snake/board.css", "/static/snake/logo.svg"):  # fmt: skip
        assert httpx.get(server.url + path).status_code == 200, path
