"""The rules of the board: directions, walls, and the one atomic move that changes a position."""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F, Func
from django.db.models.functions import Greatest, Least

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
ALLOWED = "W, A, S, D (any case), up, down, left or right"


class InvalidDirection(ValueError):
    pass


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
        return asdict(self)


def is_valid_slug(slug: str) -> bool:
    return re.fullmatch(SLUG_PATTERN, slug) is not None


def parse_direction(value: str | None) -> Step:
    """Turn a form value into a step, or raise InvalidDirection naming the allowed values."""
    found = DIRECTIONS.get(value.lower()) if value and len(value) <= 5 else None
    if found is None:
        raise InvalidDirection(f"direction must be one of {ALLOWED}")
    return Step(*found)


def limits() -> dict[str, int]:
    """Return the largest x and y the logo's top-left corner may take."""
    return {
        "x": settings.SNAKE_BOARD_WIDTH - settings.SNAKE_LOGO_WIDTH,
        "y": settings.SNAKE_BOARD_HEIGHT - settings.SNAKE_LOGO_HEIGHT,
    }


def current(slug: str) -> Position:
    """Return the stored position, or the start position of a board nobody has moved yet."""
    row = Board.objects.filter(slug=slug).values_list("x", "y", "seq").first()
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


def _apply(slug: str, step: Step) -> bool:
    # One UPDATE whose WHERE clause is the wall check: the database serialises concurrent
    # moves, so none is lost and a move that would change nothing matches no row.
    axis, size = step.axis, settings.SNAKE_STEP
    target: Func
    if step.sign > 0:
        rows = Board.objects.filter(slug=slug, **{f"{axis}__lt": limits()[axis]})
        target = Least(F(axis) + size, limits()[axis])
    else:
        rows = Board.objects.filter(slug=slug, **{f"{axis}__gt": 0})
        target = Greatest(F(axis) - size, 0)
    return rows.update(**{axis: target, "seq": F("seq") + 1}) == 1


def move(slug: str, step: Step) -> tuple[Position, bool]:
    """Apply one step; return the position after it and whether anything changed."""
    with transaction.atomic():
        applied = _apply(slug, step)
        if not applied:
            # No row yet, or one that a concurrent first move created after our UPDATE looked
            # (checking existence first would lose that move): make sure it exists, try again.
            # A step into a wall matches no row the second time either.
            Board.objects.get_or_create(
                slug=slug, defaults={"x": settings.SNAKE_START_X, "y": settings.SNAKE_START_Y}
            )
            applied = _apply(slug, step)
        # Read inside the transaction: the row is still locked, so this is exactly our state.
        position = current(slug)
        if position.seq == 0:
            # A first step into a wall: a board nobody has moved stays unstored.
            transaction.set_rollback(True)
    logger.debug("move %s %s%+d -> %s applied=%s", slug, step.axis, step.sign, position, applied)
    return position, applied
