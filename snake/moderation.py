"""A board's own state, which moderators set: its title, its logo and whether it is frozen.

Each change that changes something bumps the board's `version`, the version of its `board`
event, so every viewer keeps the newest. Positions change in snake/board.py only (reset too).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import F

from snake import board
from snake.models import Board, Logo


@dataclass(frozen=True)
class Meta:
    slug: str
    title: str  # as set: empty for "show the slug"
    frozen: bool
    version: int
    logo: str = ""  # an uploaded logo's name (<sha256>.<format>); empty: the bundled one

    @property
    def shown_title(self) -> str:
        return self.title or self.slug


FIELDS = ("title", "frozen", "version", "logo__sha256", "logo__format")


def _meta(slug: str, row: tuple[str, bool, int, str | None, str | None] | None) -> Meta:
    if row is None:
        return Meta(slug, "", False, 1)
    title, frozen, version, sha, fmt = row
    return Meta(slug, title, frozen, version, f"{sha}.{fmt}" if sha else "")


def meta(slug: str) -> Meta:
    """Return the board's own state; a board never stored has the defaults."""
    return _meta(slug, Board.objects.filter(slug=slug).values_list(*FIELDS).first())


def locked(slug: str) -> Meta:
    """Return the board's own state, its row locked until the current transaction ends."""
    # of=self: the logo is an outer join, and PostgreSQL locks no row on its nullable side.
    rows = Board.objects.select_for_update(of=("self",)).filter(slug=slug)
    return _meta(slug, rows.values_list(*FIELDS).first())


def _change(slug: str, **fields: object) -> tuple[Meta, bool]:
    with transaction.atomic():
        board.create(slug)
        rows = Board.objects.select_for_update().filter(slug=slug)
        if rows.filter(**fields).exists():
            return locked(slug), False
        rows.update(version=F("version") + 1, **fields)
        return locked(slug), True


def freeze(slug: str, frozen: bool = True) -> tuple[Meta, bool]:
    """Freeze (or unfreeze) the board; return its state and whether that changed it."""
    return _change(slug, frozen=frozen)


def set_logo(slug: str, logo: Logo | None) -> tuple[Meta, bool]:
    """Give the board an uploaded logo (None: the bundled one); return its state, if changed."""
    return _change(slug, logo=logo)


def set_title(slug: str, title: str) -> tuple[Meta, bool]:
    """Give the board a title ("" shows the slug); return its state and whether it changed."""
    return _change(slug, title=title.strip())
