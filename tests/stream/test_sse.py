"""The stream's bytes, framed as django-eventstream frames them."""

from __future__ import annotations

from snake.stream import sse


def test_an_event_is_named_and_each_line_of_its_fragment_is_a_data_line() -> None:
    assert sse.encode("count", "<p>\n1</p>") == "event: count\ndata: <p>\ndata: 1</p>\n\n"


def test_a_name_cannot_smuggle_a_field_in() -> None:
    assert sse.encode("count\ndata: evil", "x").startswith("event: countdata: evil\n")


def test_the_opening_is_the_padding_then_every_event_of_the_state_in_order() -> None:
    opening = sse.opening({"b": (3, "<b>"), "a": (1, "<a>")})
    padding, _, events = opening.partition("\n\n")
    assert padding == ":" + " " * 2048  # proxies that hold small bodies back pass it on
    assert events == "event: stream-open\ndata:\n\nevent: b\ndata: <b>\n\nevent: a\ndata: <a>\n\n"
