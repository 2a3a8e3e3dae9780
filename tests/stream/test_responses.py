"""The stream as Django's view serves it (Django's test client; no ASGI router in front)."""

from __future__ import annotations

import gc

import pytest
from django.test import Client, override_settings

from snake.guards import refusal, streamcap


@pytest.mark.django_db
@override_settings(SNAKE_MAX_STREAMS_PER_IP=1)
def test_django_s_view_streams_under_the_same_cap(client: Client) -> None:
    first = client.get("/b/resp/events/")
    assert first.status_code == 200 and first["Content-Type"] == "text/event-stream"
    assert first["Cache-Control"] == "no-cache"
    second = client.get("/b/resp/events/", headers={"Accept": "application/json"})
    assert second.status_code == 429 and "at most 1" in second.json()["error"]
    assert second["Retry-After"] == str(refusal.STREAM_RETRY_AFTER)
    # Never read, the first stream lets its slot go with its response.
    del first
    gc.collect()
    assert streamcap.open_streams("127.0.0.1") == 0
    assert client.get("/b/resp/events/").status_code == 200
