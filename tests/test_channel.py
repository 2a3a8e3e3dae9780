from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import translation

from snake import board, channel, moderation
from snake.models import Board
from snake.stream import registry
from tests.listeners import Recording


@pytest.fixture
def listener(listen: Callable[[str], Recording]) -> Recording:
    """A django-eventstream listener on board "ev", as a stream would register it."""
    return listen(channel.name("ev"))


def queued(listener: Recording) -> list[tuple[str, int, str]]:
    """What was queued for the channel since the last look."""
    return listener.queued(channel.name("ev"))


def test_fragment_is_the_logo_with_position_and_seq() -> None:
    html = channel.render_logo(board.Position("m", 15, 20, 7))
    assert html.startswith('<div id="logo" ')
    assert 'style="left: 15px; top: 20px"' in html
    assert 'data-x="15" data-y="20" data-seq="7"' in html
    assert "\n" not in html


@override_settings(USE_THOUSAND_SEPARATOR=True)
def test_fragment_numbers_are_never_localised() -> None:
    # Scripts parse data-seq, and CSS needs "left: 1200px": never "1,200".
    html = channel.render_logo(board.Position("m", 1040, 652, 12345))
    assert 'style="left: 1040px; top: 652px"' in html
    assert 'data-x="1040" data-y="652" data-seq="12345"' in html


@override_settings(USE_THOUSAND_SEPARATOR=True)
def test_presence_is_a_number_in_the_presence_span_never_localised() -> None:
    assert channel.render_presence(channel.name("p"), 12345) == (
        '<span id="presence" class="presence" data-viewers="12345">12345</span>'
    )


def test_the_board_shows_its_audience_and_nobody_watches_a_board_without_streams() -> None:
    assert registry.presence(channel.name("p")) is channel.render_presence
    assert channel.watching("nobody-here") == 0


@pytest.mark.django_db
def test_the_snapshot_is_the_board_event_and_the_position_event_versioned_by_seq() -> None:
    board.move("snap", board.parse_direction("s"))
    position = board.current("snap")
    assert channel.snapshot(channel.name("snap")) == {
        "board": (1, channel.render_board(moderation.meta("snap"))),
        "position": (position.seq, channel.render_logo(position)),
    }


@pytest.mark.parametrize(("frozen", "disabled"), [(False, ""), (True, " disabled")])
def test_the_board_fragment_is_the_title_with_the_logo_and_frozen_state_then_the_pad(
    frozen: bool, disabled: str
) -> None:
    fragment = channel.render_board(moderation.Meta("t-1", "", frozen, 3))
    title, pad = fragment.split("\n", 1)
    assert title == (
        '<strong id="title" class="title" data-logo="/static/snake/logo.svg" '
        f'data-frozen="{str(frozen).lower()}">t-1</strong>'
    )
    assert pad.startswith(f'<fieldset id="pad" class="pad" aria-labelledby="pad-label"{disabled}>')
    assert [f'form="move-{d}"' in pad for d in "wasd"] == [True] * 4


def test_a_title_set_is_shown_instead_of_the_slug() -> None:
    fragment = channel.render_board(moderation.Meta("t-1", "Our board", False, 2))
    assert ">Our board</strong>" in fragment


@pytest.mark.django_db(transaction=True)
def test_publish_sends_after_commit(listener: Recording) -> None:
    with transaction.atomic():
        position, _ = board.move("ev", board.parse_direction("d"))
        channel.publish(position)
        assert queued(listener) == []
    assert queued(listener) == [("position", position.seq, channel.render_logo(position))]


@pytest.mark.django_db(transaction=True)
def test_publish_in_a_rolled_back_transaction_sends_nothing(listener: Recording) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        position, _ = board.move("ev", board.parse_direction("d"))
        channel.publish(position)
        raise RuntimeError("roll back")
    assert queued(listener) == []
    assert board.current("ev").seq == 0


@pytest.mark.django_db(transaction=True)
def test_without_a_grip_proxy_each_move_publishes_its_own_position(listener: Recording) -> None:
    # Viewers keep the newest version: no claim, no second transaction, nothing re-read.
    with transaction.atomic():
        first, _ = board.move("ev", board.parse_direction("d"))
        second, _ = board.move("ev", board.parse_direction("d"))
        channel.publish(second)
        channel.publish(first)
    assert queued(listener) == [
        ("position", 2, channel.render_logo(second)),
        ("position", 1, channel.render_logo(first)),
    ]
    assert Board.objects.get(slug="ev").published_seq == 0


@pytest.mark.django_db(transaction=True)
@override_settings(SNAKE_GRIP_URL="http://127.0.0.1:9")  # no GRIP_PROXIES: none is sent there
def test_for_a_grip_proxy_publishes_leave_in_seq_order_and_never_repeat(
    listener: Recording,
) -> None:
    # The proxy forwards what it gets as it gets it: each publish claims the newest under the
    # row lock. Two moves commit before either publish runs (as with concurrent requests): the
    # first publish carries the newest state, the second finds nothing newer and sends nothing.
    with transaction.atomic():
        first, _ = board.move("ev", board.parse_direction("d"))
        second, _ = board.move("ev", board.parse_direction("d"))
        channel.publish(first)
        channel.publish(second)
    assert queued(listener) == [("position", 2, channel.render_logo(second))]
    channel.publish(second)
    assert queued(listener) == []  # nothing newer: nothing more sent


@pytest.mark.parametrize("frozen", [False, True])
def test_the_streamed_fragments_are_the_same_in_every_language(frozen: bool) -> None:
    # Each event goes to the viewers of every language, rendered in whichever the request
    # that made it spoke: its words are the page's, around it.
    def fragments() -> tuple[str, str, str]:
        logo = channel.render_logo(board.Position("m", 1040, 652, 12345))
        presence = channel.render_presence(channel.name("m"), 1234)
        pad = channel.render_board(moderation.Meta("m", "", frozen, 3))
        return logo, presence, pad

    with translation.override("es"):
        assert translation.gettext("Move the logo") == "Mueve el logo"  # Spanish is on
        spanish = fragments()
    with translation.override("en"):
        assert fragments() == spanish
