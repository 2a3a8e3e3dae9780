"""Publishing: now, or once the transaction commits, on the local path for these tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import transaction

from snake import stream
from tests.listeners import Recording


@pytest.fixture
def listener(listen: Callable[[str], Recording]) -> Recording:
    return listen("count-pub")


def test_send_delivers_at_once_with_the_version_beside_the_fragment(listener: Recording) -> None:
    stream.send("count-pub", "count", 7, "<p>7</p>")
    assert listener.queued("count-pub") == [("count", 7, "<p>7</p>")]


@pytest.mark.django_db(transaction=True)
def test_publish_waits_for_the_commit(listener: Recording) -> None:
    with transaction.atomic():
        stream.publish("count-pub", "count", 1, "<p>1</p>")
        assert listener.queued("count-pub") == []
    assert listener.queued("count-pub") == [("count", 1, "<p>1</p>")]


@pytest.mark.django_db(transaction=True)
def test_publish_in_a_rolled_back_transaction_sends_nothing(listener: Recording) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        stream.publish("count-pub", "count", 1, "<p>1</p>")
        raise RuntimeError("roll back")
    assert listener.queued("count-pub") == []
