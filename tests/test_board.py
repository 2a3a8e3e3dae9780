from __future__ import annotations

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from snake import board
from snake.models import Board


@pytest.mark.parametrize(
    ("value", "axis", "sign"),
    [
        ("W", "y", -1), ("w", "y", -1), ("up", "y", -1), ("UP", "y", -1),
        ("S", "y", 1), ("s", "y", 1), ("down", "y", 1),
        ("A", "x", -1), ("a", "x", -1), ("left", "x", -1),
        ("D", "x", 1), ("d", "x", 1), ("Right", "x", 1),
    ],
)  # fmt: skip
def test_parse_direction_accepts_letters_and_words(value: str, axis: str, sign: int) -> None:
    assert board.parse_direction(value) == board.Step(axis, sign)


@pytest.mark.parametrize("value", [None, "", "x", "ww", " w", "w ", "north", "d" * 5000, "ц"])
def test_parse_direction_rejects_anything_else_naming_the_allowed(value: str | None) -> None:
    with pytest.raises(board.InvalidDirection, match="W, A, S, D"):
        board.parse_direction(value)


@pytest.mark.parametrize("slug", ["main", "a", "0", "room-1", "a" * 40, "9-lives"])
def test_valid_slugs(slug: str) -> None:
    assert board.is_valid_slug(slug)


@pytest.mark.parametrize("slug", ["", "-a", "A", "a_b", "a b", "a" * 41, "é", "a/b", "a\n"])
def test_invalid_slugs(slug: str) -> None:
    assert not board.is_valid_slug(slug)


def test_limits_follow_the_settings() -> None:
    assert board.limits() == {"x": 1200 - 160, "y": 700 - 48}
    with override_settings(SNAKE_BOARD_WIDTH=400, SNAKE_LOGO_HEIGHT=100):
        assert board.limits() == {"x": 400 - 160, "y": 700 - 100}


@pytest.mark.django_db
def test_unknown_board_is_the_start_position_and_stores_nothing() -> None:
    assert board.current("nobody") == board.Position("nobody", 500, 150, 0)
    assert not Board.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("direction", "x", "y"), [("W", 500, 145), ("S", 500, 155), ("A", 495, 150), ("D", 505, 150)]
)
def test_first_move_stores_the_board(direction: str, x: int, y: int) -> None:
    position, changed = board.move("fresh", board.parse_direction(direction))
    assert changed
    assert position == board.Position("fresh", x, y, 1)
    assert board.current("fresh") == position


@pytest.mark.django_db
def test_each_applied_move_counts_once() -> None:
    for _ in range(3):
        board.move("count", board.parse_direction("d"))
    assert board.current("count") == board.Position("count", 515, 150, 3)


@pytest.mark.django_db
def test_a_stored_board_moves_in_one_statement_and_a_wall_still_changes_nothing() -> None:
    board.move("once", board.parse_direction("d"))  # stores it
    with CaptureQueriesContext(connection) as moved:
        position, changed = board.move("once", board.parse_direction("d"))
    assert changed and position == board.Position("once", 510, 150, 2)
    assert [q["sql"].split()[0] for q in moved.captured_queries] == ["UPDATE"]
    Board.objects.filter(slug="once").update(x=0)
    position, changed = board.move("once", board.parse_direction("a"))
    assert not changed and position == board.Position("once", 0, 150, 2)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("start", "direction", "end"),
    [
        ((0, 100), "A", (0, 100)),
        ((2, 100), "A", (0, 100)),
        ((1040, 100), "D", (1040, 100)),
        ((1038, 100), "D", (1040, 100)),
        ((100, 0), "W", (100, 0)),
        ((100, 3), "W", (100, 0)),
        ((100, 652), "S", (100, 652)),
        ((100, 650), "S", (100, 652)),
    ],
)
def test_walls_stop_the_logo(start: tuple[int, int], direction: str, end: tuple[int, int]) -> None:
    Board.objects.create(slug="walls", x=start[0], y=start[1], seq=7)
    position, changed = board.move("walls", board.parse_direction(direction))
    assert (position.x, position.y) == end
    assert changed == (start != end)
    assert position.seq == (8 if changed else 7)


@pytest.mark.django_db
@override_settings(SNAKE_START_X=0)
def test_first_step_into_a_wall_stores_nothing() -> None:
    position, changed = board.move("edge", board.parse_direction("A"))
    assert not changed
    assert position == board.Position("edge", 0, 150, 0)
    assert not Board.objects.filter(slug="edge").exists()


def test_position_as_dict_is_the_json_contract() -> None:
    assert board.Position("m", 1, 2, 3).as_dict() == {"slug": "m", "x": 1, "y": 2, "seq": 3}


@pytest.mark.django_db
def test_claim_unpublished_returns_each_newer_state_once() -> None:
    assert board.claim_unpublished("pub") is None  # no board, nothing to send
    board.move("pub", board.parse_direction("s"))
    board.move("pub", board.parse_direction("s"))
    assert board.claim_unpublished("pub") == board.Position("pub", 500, 160, 2)
    assert board.claim_unpublished("pub") is None
    board.move("pub", board.parse_direction("w"))
    assert board.claim_unpublished("pub") == board.Position("pub", 500, 155, 3)


@pytest.mark.django_db
def test_a_frozen_board_refuses_every_move_and_changes_nothing() -> None:
    board.move("frozen", board.parse_direction("d"))
    Board.objects.filter(slug="frozen").update(frozen=True)
    for direction in "wasd":
        with pytest.raises(board.Frozen):
            board.move("frozen", board.parse_direction(direction))
    assert board.current("frozen") == board.Position("frozen", 505, 150, 1)


@pytest.mark.django_db
def test_a_reset_puts_the_logo_at_the_start_as_one_more_move() -> None:
    for direction in "ddss":
        board.move("back", board.parse_direction(direction))
    assert board.reset("back") == board.Position("back", 500, 150, 5)
    assert board.claim_unpublished("back") == board.Position("back", 500, 150, 5)
    assert board.reset("never-moved") == board.Position("never-moved", 500, 150, 1)


def test_the_rules_import_no_http() -> None:
    # import-linter (pyproject.toml) keeps the stream and the guards out of the rules; it
    # cannot name django.http, a part of an external package, so this test does.
    import ast
    from pathlib import Path

    for name in ("board.py", "models.py"):
        tree = ast.parse((Path(board.__file__).parent / name).read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert not {m for m in imported if m and m.startswith(("django.http", "django.urls"))}
