"""A board's own state, which moderators set: its title, its logo and whether it is frozen.

Each change that changes something bumps the board's `version`, the version of its `board`
event, so every viewer keeps the newest. Positions change in snake/board.py only (reset too).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction
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
    return Meta(slug, title, bool(frozen), version, f"{sha}.{fmt}" if sha else "")


def meta(slug: str) -> Meta:
    """Return the board's own state; a board never stored has the defaults."""
    # SQL, as board.current: the ORM compiled this join anew on every page, a quarter of the
    # page view's time in a profile (py-spy). SQLite answers frozen as 0 or 1: _meta casts.
    quote = connection.ops.quote_name
    boards, logos = quote(Board._meta.db_table), quote(Logo._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT b.title, b.frozen, b.version, l.sha256, l.format FROM {boards} b "
            f"LEFT JOIN {logos} l ON l.sha256 = b.logo_id WHERE b.slug = %s",
            [slug],
        )
        return _meta(slug, cursor.fetchone())


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
