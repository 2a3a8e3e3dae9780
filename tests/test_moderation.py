"""A board's own state: defaults, and a version bumped only by a change that changes it."""

from __future__ import annotations

import pytest

from snake import moderation
from snake.models import Board, Logo

pytestmark = pytest.mark.django_db


def test_a_board_never_stored_has_the_defaults_and_stays_unstored() -> None:
    assert moderation.meta("never") == moderation.Meta("never", "", False, 1)
    assert moderation.meta("never").shown_title == "never"
    assert not Board.objects.filter(slug="never").exists()


def test_freezing_stores_the_board_at_the_start_and_bumps_its_version_once() -> None:
    state, changed = moderation.freeze("cold")
    assert changed and state == moderation.Meta("cold", "", True, 2)
    stored = Board.objects.get(slug="cold")
    assert (stored.x, stored.y, stored.seq, stored.frozen) == (500, 150, 0, True)
    again, changed = moderation.freeze("cold")
    assert not changed and again.version == 2
    thawed, changed = moderation.freeze("cold", False)
    assert changed and thawed == moderation.Meta("cold", "", False, 3)


def test_a_title_is_stripped_and_shown_instead_of_the_slug() -> None:
    state, changed = moderation.set_title("named", "  Our board ")
    assert changed and state.title == "Our board" and state.shown_title == "Our board"
    assert moderation.meta("named") == state
    cleared, changed = moderation.set_title("named", "")
    assert changed and cleared.shown_title == "named" and cleared.version == 3


def test_meta_reads_what_the_locked_read_does_logo_and_frozen_included() -> None:
    logo = Logo.objects.create(sha256="a" * 64, format="png", data=b"", width=1, height=1)
    moderation.set_logo("drawn", logo)
    state, _ = moderation.freeze("drawn")
    assert state == moderation.Meta("drawn", "", True, 3, f"{'a' * 64}.png")
    assert moderation.meta("drawn") == state
    assert moderation.meta("drawn").frozen is True
    back, _ = moderation.set_logo("drawn", None)
    assert moderation.meta("drawn") == back and back.logo == ""
