"""The write-path floor: bench/floor.py's contract, each move committed to SQLite before its answer.

Pinned so that it cannot be made slow, and so that it is the least a durable move costs here:
stdlib asyncio on one thread, one sqlite3 connection (WAL, `synchronous=NORMAL`), one
`BEGIN IMMEDIATE` / `UPDATE … RETURNING` / `COMMIT` per move before it is answered, keep-alive,
and each board's fan-out coalesced to its newest state (at most one per loop turn, however many
moves that turn committed). The burst rows compare the app's moves/s and POST p99 against it.

    .venv/bin/python -m bench.writefloor [--host 127.0.0.1] [--port 18401] [--db PATH]

A move answers `{"slug","x","y","seq"}` when JSON is asked for (`Accept: application/json`, as
the bench's clients send), 204 otherwise. Page, 404 and 405 answers are bench/floor.py's.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

from bench import floor

SCHEMA = "CREATE TABLE IF NOT EXISTS board (slug TEXT PRIMARY KEY, x INT, y INT, seq INT)"
# The step and the wall check in the statement itself: the row, not this process, decides.
MOVE = (
    "UPDATE board SET x = x + ?1, y = y + ?2, seq = seq + 1 WHERE slug = ?3"
    " AND x + ?1 BETWEEN 0 AND ?4 AND y + ?2 BETWEEN 0 AND ?5 RETURNING x, y, seq"
)
LIMITS = (floor.WIDTH - floor.LOGO_W, floor.HEIGHT - floor.LOGO_H)


def connect(path: Path) -> sqlite3.Connection:
    """The one connection: autocommit mode, so that each move's transaction is spelled out."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(SCHEMA)
    return db


@dataclass(eq=False)
class Board(floor.Board):
    flush_due: bool = False

    def commit(self, db: sqlite3.Connection, direction: str) -> None:
        """Apply one move in its own transaction; schedule a fan-out if it moved the logo."""
        dx, dy = floor.STEPS[direction]
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute(
                MOVE, (dx * floor.STEP, dy * floor.STEP, self.slug, *LIMITS)
            ).fetchone()
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if row is not None:
            self.x, self.y, self.seq = row
            if not self.flush_due:
                self.flush_due = True
                asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Write the newest state, encoded once, to every viewer."""
        self.flush_due = False
        data = self.event()
        for viewer in self.viewers:
            viewer.write(data)


class Boards(dict[str, Board]):
    """The boards seen so far, each loaded from (or first inserted into) the database."""

    def __init__(self, db: sqlite3.Connection) -> None:
        super().__init__()
        self.db = db

    def __missing__(self, slug: str) -> Board:
        start = (slug, floor.START_X, floor.START_Y)
        self.db.execute("INSERT OR IGNORE INTO board VALUES (?, ?, ?, 0)", start)
        query = "SELECT x, y, seq FROM board WHERE slug = ?"
        x, y, seq = self.db.execute(query, (slug,)).fetchone()
        self[slug] = found = Board(slug, x, y, seq)
        return found


class Http(floor.Http):
    """bench/floor.py's protocol; events, state and moves on the stored boards."""

    boards: Boards  # set by serve()

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        route = floor.ROUTE.fullmatch(path)
        if route is None or route[2] is None or method != ("POST" if route[2] == "move" else "GET"):
            super().handle(method, path, headers, body)  # the page, 404 and 405
            return
        slug, action = route.groups()
        board = self.boards[slug]
        if action == "events/":
            self.viewing = board
            board.viewers.add(self.transport)
            self.transport.write(floor.STREAM_HEAD + board.event())
        elif action == "state":
            self.transport.write(floor.json_response("200 OK", board.state()))
        else:
            self.transport.write(self.commit(board, headers, body))

    def commit(self, board: Board, headers: dict[str, str], body: bytes) -> bytes:
        cookies = dict(
            c.strip().partition("=")[::2] for c in headers.get("cookie", "").split(";") if c
        )
        token = headers.get("x-csrftoken", "")
        if not token or cookies.get("csrftoken") != token:
            return floor.json_response("403 Forbidden", {"error": "CSRF check failed"})
        direction = parse_qs(body.decode("latin-1")).get("direction", [""])[0].lower()
        if direction not in floor.STEPS:
            allowed = list(floor.STEPS)
            return floor.json_response("400 Bad Request", {"error": f"direction: one of {allowed}"})
        board.commit(self.boards.db, direction)
        if "application/json" in headers.get("accept", ""):
            return floor.json_response("200 OK", board.state())
        return b"HTTP/1.1 204 No Content\r\n\r\n"


async def serve(host: str, port: int, path: Path) -> None:
    Http.boards = Boards(connect(path))
    await floor.run(Http, host, port, "writefloor", f" db {path}")
    Http.boards.db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18401)
    parser.add_argument("--db", type=Path, default=Path("var/bench/writefloor.sqlite3"))
    args = parser.parse_args()
    args.db.parent.mkdir(parents=True, exist_ok=True)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(serve(args.host, args.port, args.db))


if __name__ == "__main__":
    main()
