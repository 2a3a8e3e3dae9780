"""What a moderator does to a board, from the admin or the command line, each change published.

Every change commits first and reaches the viewers after (snake.channel): the `board` event for
the board's own state, a `position` event for a reset, which is one more move in seq order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from django.db import transaction

from snake import board, channel, moderation
from snake.models import Board, Logo

T = TypeVar("T")


def freeze(slug: str, frozen: bool = True) -> moderation.Meta:
    """Freeze (or unfreeze) a board: moves get 423 and every page shows it; return its state."""
    return _published(moderation.freeze, slug, frozen)


def set_title(slug: str, title: str) -> moderation.Meta:
    return _published(moderation.set_title, slug, title)


def set_logo(slug: str, logo: Logo | None) -> moderation.Meta:
    """Give a board an uploaded logo, or (None) the bundled one again."""
    return _published(moderation.set_logo, slug, logo)


def _published(
    change: Callable[[str, T], tuple[moderation.Meta, bool]], slug: str, value: T
) -> moderation.Meta:
    with transaction.atomic():
        state, changed = change(slug, value)
        if changed:
            channel.publish_board(slug)
    return state


def reset(slug: str) -> board.Position:
    """Put a board's logo back at the start; return its position."""
    with transaction.atomic():
        position = board.reset(slug)
        channel.publish(position)
    return position


def delete(slugs: list[str], watching: Callable[[str], int]) -> tuple[list[str], list[str]]:
    """Delete the boards no one watches; return those deleted and those kept for their viewers.

    A watched board is kept: its viewers hold its seq, and a board made anew starts at 0, so
    they would skip its moves until their pages reload. Freeze or reset it instead.
    """
    unwatched = [slug for slug in slugs if watching(slug) == 0]
    Board.objects.filter(slug__in=unwatched).delete()
    return unwatched, [slug for slug in slugs if slug not in unwatched]
