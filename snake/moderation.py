"""A board's own state, which moderators set: its title and whether it is frozen.

Each change that changes something bumps the board's `version`, the version of its `board`
event, so every viewer keeps the newest. Positions change in snake/board.py only (reset too).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from snake import board
from snake.models import Board


@dataclass(frozen=True)
class Meta:
    slug: str
    title: str  # as set: empty for "show the slug"
    frozen: bool
    version: int

    @property
    def shown_title(self) -> str:
        return self.title or self.slug


FIELDS = ("title", "frozen", "version")


def _meta(slug: str, row: tuple[str, bool, int] | None) -> Meta:
    return Meta(slug, "", False, 1) if row is None else Meta(slug, *row)


def meta(slug: str) -> Meta:
    """Return the board's own state; a board never stored has the defaults."""
    return _meta(slug, Board.objects.filter(slug=slug).values_list(*FIELDS).first())


def locked(slug: str) -> Meta:
    """Return the board's own state, its row locked until the current transaction ends."""
    rows = Board.objects.select_for_update().filter(slug=slug)
    return _meta(slug, rows.values_list(*FIELDS).first())


def _change(slug: str, **fields: object) -> tuple[Meta, bool]:
    with transaction.atomic():
        board.create(slug)
        before = locked(slug)
        if all(getattr(before, name) == value for name, value in fields.items()):
            return before, False
        version = before.version + 1
        Board.objects.filter(slug=slug).update(version=version, **fields)
    return Meta(**{**before.__dict__, **fields, "version": version}), True


def freeze(slug: str, frozen: bool = True) -> tuple[Meta, bool]:
    """Freeze (or unfreeze) the board; return its state and whether that changed it."""
    return _change(slug, frozen=frozen)


def set_title(slug: str, title: str) -> tuple[Meta, bool]:
    """Give the board a title ("" shows the slug); return its state and whether it changed."""
    return _change(slug, title=title.strip())
