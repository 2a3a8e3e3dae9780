"""The rules of the board: directions, walls, and the one atomic move that changes a position."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from snake.models import Board

logger = logging.getLogger(__name__)

SLUG_PATTERN = r"[a-z0-9][a-z0-9-]{0,39}"
DEFAULT_SLUG = "main"

# direction name (lower case) -> (axis, sign); y grows downwards as in CSS.
DIRECTIONS: dict[str, tuple[str, int]] = {
    "w": ("y", -1),
    "up": ("y", -1),
    "s": ("y", 1),
    "down": ("y", 1),
    "a": ("x", -1),
    "left": ("x", -1),
    "d": ("x", 1),
    "right": ("x", 1),
}
# Translated where it is refused; the values themselves are what a client sends, in any language.
ALLOWED = gettext_noop("W, A, S, D (any case), up, down, left or right")


class InvalidDirection(ValueError):
    pass


class Frozen(Exception):
    """The board is frozen: no move applies until a moderator unfreezes it."""


@dataclass(frozen=True)
class Step:
    axis: str
    sign: int


@dataclass(frozen=True)
class Position:
    slug: str
    x: int
    y: int
    seq: int

    def as_dict(self) -> dict[str, str | int]:
        # Not dataclasses.asdict: it deep-copies each field, a tenth of a move's time.
        return {"slug": self.slug, "x": self.x, "y": self.y, "seq": self.seq}


def is_valid_slug(slug: str) -> bool:
    return re.fullmatch(SLUG_PATTERN, slug) is not None


def parse_direction(value: str | None) -> Step:
    """Turn a form value into a step, or raise InvalidDirection naming the allowed values."""
    found = DIRECTIONS.get(value.lower()) if value and len(value) <= 5 else None
    if found is None:
        allowed = gettext(ALLOWED)
        raise InvalidDirection(
            gettext("direction must be one of %(allowed)s") % {"allowed": allowed}
        )
    return Step(*found)


def limits() -> dict[str, int]:
    """Return the largest x and y the logo's top-left corner may take."""
    return {
        "x": settings.SNAKE_BOARD_WIDTH - settings.SNAKE_LOGO_WIDTH,
        "y": settings.SNAKE_BOARD_HEIGHT - settings.SNAKE_LOGO_HEIGHT,
    }


def _table() -> str:
    return str(connection.ops.quote_name(Board._meta.db_table))


def _now() -> str | None:
    """Return the time now as the database takes it for updated_at."""
    return connection.ops.adapt_datetimefield_value(timezone.now())


def current(slug: str) -> Position:
    """Return the stored position, or the start position of a board nobody has moved yet."""
    # SQL, as in _apply: the ORM compiled this query anew on every call, several times the cost
    # of running it, on the request every viewer's page and script makes.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT x, y, seq FROM {_table()} WHERE slug = %s", [slug])
        row = cursor.fetchone()
    if row is None:
        return Position(slug, settings.SNAKE_START_X, settings.SNAKE_START_Y, 0)
    return Position(slug, *row)


def claim_unpublished(slug: str) -> Position | None:
    """Lock the board; return its state if it is newer than any sent, and mark it sent.

    Call inside a transaction and send before it commits: publishes from every thread and
    worker then leave in seq order, each carrying the newest state, none carrying a stale one.
    """
    row = (
        Board.objects.select_for_update()
        .filter(slug=slug, seq__gt=F("published_seq"))
        .values_list("x", "y", "seq")
        .first()
    )
    if row is None:
        return None
    Board.objects.filter(slug=slug).update(published_seq=row[2])
    return Position(slug, *row)


def _apply(slug: str, step: Step) -> Position | None:
    """Take one step in one UPDATE; return the position after it, or None if no row changed."""
    # The WHERE clause is the wall check, so the database serialises concurrent moves: none is
    # lost, and a step that would change nothing matches no row. SQL rather than the ORM: it
    # has no UPDATE ... RETURNING, which saves reading the row again, and compiling the query
    # cost more than running it. SQLite's MIN/MAX are PostgreSQL's LEAST/GREATEST.
    axis, size, limit = step.axis, settings.SNAKE_STEP, limits()[step.axis]
    least, greatest = ("MIN", "MAX") if connection.vendor == "sqlite" else ("LEAST", "GREATEST")
    if step.sign > 0:
        target, params, wall = f"{least}({axis} + %s, %s)", [size, limit], f"{axis} < %s"
    else:
        target, params, wall = f"{greatest}({axis} - %s, 0)", [size], f"{axis} > %s"
    sql = (
        f"UPDATE {_table()} SET {axis} = {target}, seq = seq + 1, updated_at = %s "
        f"WHERE slug = %s AND {wall} AND NOT frozen RETURNING x, y, seq"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, _now(), slug, limit if step.sign > 0 else 0])
        row = cursor.fetchone()
    return None if row is None else Position(slug, *row)


def _frozen(slug: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT frozen FROM {_table()} WHERE slug = %s", [slug])
        row = cursor.fetchone()
    return row is not None and bool(row[0])


def create(slug: str) -> None:
    """Store a board at the start position unless it exists (maybe made by a concurrent move)."""
    sql = (
        f"INSERT INTO {_table()} "
        "(slug, x, y, seq, published_seq, updated_at, title, frozen, version) "
        "VALUES (%s, %s, %s, 0, 0, %s, '', FALSE, 1) ON CONFLICT (slug) DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [slug, settings.SNAKE_START_X, settings.SNAKE_START_Y, _now()])


def move(slug: str, step: Step) -> tuple[Position, bool]:
    """Apply one step in one transaction; return the position after it and whether it moved.

    Raise Frozen, moving nothing, if the board is frozen.
    """
    # A stored board that moves, nearly every move, is one UPDATE: atomic on its own, in its
    # own transaction outside an atomic block. Django's atomic() around it cost more than the
    # statement (~80 us of a move's ~0.7 ms in a live server, stamped).
    moved = _apply(slug, step)
    if moved is None:
        return _move_slowly(slug, step)
    logger.debug("move %s %s%+d -> %s", slug, step.axis, step.sign, moved)
    return moved, True


def _move_slowly(slug: str, step: Step) -> tuple[Position, bool]:
    """Move a board that may not be stored yet, or find it against a wall."""
    with transaction.atomic():
        # No row yet, or one that a concurrent first move created after our UPDATE looked
        # (checking existence first would lose that move): make sure it exists, try again.
        create(slug)
        moved = _apply(slug, step)
        if moved is None and _frozen(slug):
            raise Frozen(slug)
        position = moved or current(slug)  # not moved: a step into a wall
        if position.seq == 0:
            transaction.set_rollback(True)  # a board nobody has moved stays unstored
    logger.debug("move %s %s%+d -> %s", slug, step.axis, step.sign, position)
    return position, moved is not None


def reset(slug: str) -> Position:
    """Put the logo back at the start as one more move (seq + 1), so publishes stay in order."""
    sql = (
        f"UPDATE {_table()} SET x = %s, y = %s, seq = seq + 1, updated_at = %s "
        "WHERE slug = %s RETURNING x, y, seq"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        create(slug)
        cursor.execute(sql, [settings.SNAKE_START_X, settings.SNAKE_START_Y, _now(), slug])
        row = cursor.fetchone()
    logger.info("reset %s -> %s", slug, row)
    return Position(slug, *row)
