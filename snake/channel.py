"""The board on the stream engine: its channel, the fragments it streams, snapshot and publish."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.urls import reverse

from snake import board, moderation, stream

PREFIX = "board-"
POSITION = "position"  # the event that carries the logo fragment (public API)
BOARD = "board"  # the event that carries the board's own state: title, logo, frozen (public API)

# (direction sent, label, keys that press it) for the on-screen pad and the keyboard; the labels
# are arrows and letters, which every language shares (the `board` event carries the pad).
CONTROLS = [
    ("W", "↑ W", ("w", "W", "ArrowUp")),
    ("A", "← A", ("a", "A", "ArrowLeft")),
    ("S", "↓ S", ("s", "S", "ArrowDown")),
    ("D", "→ D", ("d", "D", "ArrowRight")),
]


def name(slug: str) -> str:
    return PREFIX + slug


def render_logo(position: board.Position) -> str:
    return render_to_string("snake/_logo.html", {"position": position}).strip()


def meta(slug: str) -> dict[str, object]:
    """Return the board's own state as the page and the `board` event show it."""
    return _shown(moderation.meta(slug))


def _shown(state: moderation.Meta) -> dict[str, object]:
    return {
        "title": state.shown_title,
        "logo": reverse("logo", args=[state.logo]) if state.logo else static("snake/logo.svg"),
        "frozen": state.frozen,
        "version": state.version,
    }


def render_board(state: moderation.Meta) -> str:
    context = {"meta": _shown(state), "controls": CONTROLS}
    return render_to_string("snake/_board.html", context).strip()


def render_presence(channel: str, viewers: int) -> str:
    """Render how many watch a board: a number only, so the page's words around it may vary."""
    return render_to_string("snake/_presence.html", {"viewers": viewers}).strip()


def watching(slug: str) -> int:
    return stream.watching(name(slug))


def snapshot(channel: str) -> stream.State:
    """Return the board's state as the engine streams it: its own state, its position by seq."""
    slug = channel.removeprefix(PREFIX)
    position, state = board.current(slug), moderation.meta(slug)
    return {
        BOARD: (state.version, render_board(state)),
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


def publish_board(slug: str) -> None:
    """Send the board's own state to every viewer once the current transaction commits."""
    # As moves: each change is read and sent under the row's lock, so the GRIP proxy gets them
    # in version order. Few, so one way for every topology.
    transaction.on_commit(lambda: _publish_board(slug), robust=True)


def _publish_board(slug: str) -> None:
    with transaction.atomic():
        state = moderation.locked(slug)
        stream.send(name(slug), BOARD, state.version, render_board(state))


def republish(slug: str) -> None:
    """Send the board's stored state, as a stream's opening has it, on every path."""
    for event, (version, fragment) in snapshot(name(slug)).items():
        stream.send(name(slug), event, version, fragment)


def _publish_newest(slug: str) -> None:
    # Sent while the claim holds the board's row lock: publishes from every thread and worker
    # leave in seq order, which the GRIP proxy needs (it forwards what it gets, as it gets it).
    with transaction.atomic():
        position = board.claim_unpublished(slug)
        if position is not None:
            stream.send(name(slug), POSITION, position.seq, render_logo(position))


def register() -> None:
    stream.register(PREFIX, snapshot, presence=render_presence)
