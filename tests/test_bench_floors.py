"""bench's write-path and ASGI floors on real ports: moves answered, stored, and seen streaming."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator

import httpx
import pytest

from bench import servers

SLUG = "floors"


def watch(url: str, seq: int, seen: list[str], ready: threading.Event) -> None:
    """Read the board's stream until an event carries `data-seq="<seq>"` (or 30 s pass)."""
    with httpx.stream("GET", f"{url}/b/{SLUG}/events/", timeout=30) as stream:
        for line in stream.iter_lines():
            seen.append(line)
            ready.set()
            if f'data-seq="{seq}"' in line:
                return


@contextlib.contextmanager
def watching(url: str, seq: int) -> Iterator[list[str]]:
    """A viewer of the board, connected with its opening event before the block runs."""
    seen: list[str] = []
    ready = threading.Event()
    viewer = threading.Thread(target=watch, args=(url, seq, seen, ready), daemon=True)
    viewer.start()
    assert ready.wait(30), "no opening event"
    yield seen
    viewer.join(30)
    assert not viewer.is_alive(), seen


@contextlib.contextmanager
def player(url: str) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    """A keep-alive client with its csrftoken, and the headers of a JSON move."""
    with httpx.Client(base_url=url, timeout=30) as client:
        token = client.get("/").cookies["csrftoken"]
        yield client, {"X-CSRFToken": token, "Accept": "application/json"}


def moves(url: str, directions: str) -> list[httpx.Response]:
    with player(url) as (client, headers):
        return [
            client.post(f"/b/{SLUG}/move", data={"direction": d}, headers=headers)
            for d in directions
        ]


@pytest.mark.parametrize("kind", ["writefloor", "asgifloor"])
def test_a_floor_answers_moves_and_streams_the_last(kind: str) -> None:
    with servers.STARTERS[kind]("test") as target, watching(target.url, 3) as seen:
        answers = moves(target.url, "dsd")
        assert [a.json()["seq"] for a in answers] == [1, 2, 3]
        assert answers[-1].json() == {"slug": SLUG, "x": 510, "y": 155, "seq": 3}
        state = httpx.get(f"{target.url}/b/{SLUG}/state", timeout=30).json()
    assert state["seq"] == 3
    assert 'data-seq="0"' in seen[1] and 'data-seq="3"' in seen[-1], seen


def test_the_write_floor_commits_each_move_before_answering() -> None:
    db = servers.BENCH_VAR / "writefloor-test" / "db.sqlite3"
    with (
        servers.STARTERS["writefloor"]("test") as target,
        contextlib.closing(sqlite3.connect(db)) as reader,
    ):
        with player(target.url) as (client, headers):
            stored = []
            for direction in "dsd":
                client.post(f"/b/{SLUG}/move", data={"direction": direction}, headers=headers)
                query = "SELECT x, y, seq FROM board WHERE slug = ?"
                stored.append(reader.execute(query, (SLUG,)).fetchone())
            plain = client.post(
                f"/b/{SLUG}/move",
                data={"direction": "a"},
                headers={"X-CSRFToken": headers["X-CSRFToken"]},
            )
            refused = client.post(f"/b/{SLUG}/move", data={"direction": "a"})
            after = reader.execute("SELECT x, seq FROM board").fetchall()
        mode = reader.execute("PRAGMA journal_mode").fetchone()
    assert stored == [(505, 150, 1), (505, 155, 2), (510, 155, 3)]
    assert (plain.status_code, plain.content) == (204, b"")
    assert refused.status_code == 403
    assert after == [(505, 4)]
    assert mode == ("wal",)
