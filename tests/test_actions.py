"""A moderator's actions: each change stored, then published once the transaction commits."""

from __future__ import annotations

import pytest
from django.db import transaction

from snake import actions, board, channel, logos, moderation
from snake.models import Board
from tests.test_logos import picture

pytestmark = pytest.mark.django_db(transaction=True)


def test_freezing_publishes_the_board_event_after_commit_once(listen) -> None:
    recording = listen(channel.name("act-freeze"))
    with transaction.atomic():
        actions.freeze("act-freeze")
        assert recording.queued(channel.name("act-freeze")) == []  # not before the commit
    [(name, version, fragment)] = recording.queued(channel.name("act-freeze"))
    assert (name, version) == ("board", 2) and 'data-frozen="true"' in fragment
    actions.freeze("act-freeze")  # already frozen: nothing changes, nothing is sent
    assert recording.queued(channel.name("act-freeze")) == []


def test_a_title_reaches_the_viewers(listen) -> None:
    recording = listen(channel.name("act-title"))
    assert actions.set_title("act-title", "Hello").shown_title == "Hello"
    [(_, version, fragment)] = recording.queued(channel.name("act-title"))
    assert version == 2 and ">Hello</strong>" in fragment


def test_a_reset_is_one_more_move_back_to_the_start(listen) -> None:
    board.move("act-reset", board.parse_direction("d"))
    recording = listen(channel.name("act-reset"))
    position = actions.reset("act-reset")
    assert position == board.Position("act-reset", 500, 150, 2)
    [(name, seq, fragment)] = recording.queued(channel.name("act-reset"))
    assert (name, seq) == ("position", 2) and 'data-x="500"' in fragment


def test_a_frozen_board_can_be_reset_and_stays_frozen() -> None:
    actions.freeze("act-both")
    assert actions.reset("act-both").seq == 1
    assert moderation.meta("act-both").frozen


def test_deleting_keeps_the_watched_boards() -> None:
    for slug in ("del-a", "del-b"):
        board.move(slug, board.parse_direction("s"))
    deleted, kept = actions.delete(["del-a", "del-b"], {"del-a": 0, "del-b": 2}.__getitem__)
    assert (deleted, kept) == (["del-a"], ["del-b"])
    assert list(Board.objects.filter(slug__startswith="del-").values_list("slug", flat=True)) == [
        "del-b"
    ]


def test_a_logo_reaches_the_viewers_and_the_bundled_one_comes_back(listen) -> None:
    recording = listen(channel.name("act-logo"))
    logo = logos.store(logos.encode(picture("PNG")))
    assert actions.set_logo("act-logo", logo).logo == f"{logo.sha256}.png"
    [(_, version, fragment)] = recording.queued(channel.name("act-logo"))
    assert version == 2 and f'data-logo="/logos/{logo.sha256}.png"' in fragment
    assert f'background-image: url("/logos/{logo.sha256}.png")' in fragment
    actions.set_logo("act-logo", None)
    [(_, version, fragment)] = recording.queued(channel.name("act-logo"))
    assert version == 3 and 'data-logo="/static/snake/logo.svg"' in fragment
