"""The board on the stream engine: its channel, the fragments it streams, snapshot and publish."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.templatetags.static import static

from snake import board, stream

PREFIX = "board-"
POSITION = "position"  # the event that carries the logo fragment (public API)
BOARD = "board"  # the event that carries the board's own state: title, logo, frozen (public API)
BOARD_VERSION = 1  # boards have no state of their own to change yet: moderation (#12) adds it


def name(slug: str) -> str:
    return PREFIX + slug


def render_logo(position: board.Position) -> str:
    return render_to_string("snake/_logo.html", {"position": position}).strip()


def meta(slug: str) -> dict[str, object]:
    """Return the board's own state: until moderation (#12), its slug and the default logo."""
    return {"title": slug, "logo": static("snake/logo.svg"), "frozen": False}


def render_board(slug: str) -> str:
    return render_to_string("snake/_board.html", {"meta": meta(slug)}).strip()


def render_presence(channel: str, viewers: int) -> str:
    """Render how many watch a board: a number only, so the page's words around it may vary."""
    return render_to_string("snake/_presence.html", {"viewers": viewers}).strip()


def watching(slug: str) -> int:
    return stream.watching(name(slug))


def snapshot(channel: str) -> stream.State:
    """Return the board's state as the engine streams it: its own state, its position by seq."""
    slug = channel.removeprefix(PREFIX)
    position = board.current(slug)
    return {
        BOARD: (BOARD_VERSION, render_board(slug)),
        POSITION: (position.seq, render_logo(position)),
    }


def publish(position: board.Position) -> None:
    """Send a board's new position to every viewer once the current transaction commits."""
    if not settings.SNAKE_GRIP_URL:
        # Viewers keep the newest version of each event, so publishes that overtake each other
        # on the way (two threads, two workers) need no order, and cost no second transaction.
        fragment = render_logo(position)
        stream.publish(name(position.slug), POSITION, position.seq, fragment)
        return
    # robust: the move has committed, so whatever fails here is logged, never answered 5xx.
    transaction.on_commit(lambda: _publish_newest(position.slug), robust=True)


def _publish_newest(slug: str) -> None:
    # Sent while the claim holds the board's row lock: publishes from every thread and worker
    # leave in seq order, which the GRIP proxy needs (it forwards what it gets, as it gets it).
    with transaction.atomic():
        position = board.claim_unpublished(slug)
        if position is not None:
            stream.send(name(slug), POSITION, position.seq, render_logo(position))


def register() -> None:
    stream.register(PREFIX, snapshot, presence=render_presence)
