"""ASGI entry point, served by uvicorn (`make run`), daphne or granian."""

from __future__ import annotations

import gc
import os
import re
import sys

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "snake.settings")
django_asgi_app = get_asgi_application()

# uvicorn and daphne run no system checks: refuse bad settings here, as `manage.py` does.
from snake.checks import refuse_bad_settings  # noqa: E402

refuse_bad_settings()

# Imported once Django is set up.
from asgiref.typing import ASGI3Application  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from snake import board, channel  # noqa: E402
from snake.guards.bodylimit import cap_move_bodies  # noqa: E402
from snake.handler import ThreadHandler  # noqa: E402
from snake.stream.pushpin_stats import listen  # noqa: E402
from snake.stream.routing import asgi_path, stream_path  # noqa: E402

SLUG = rf"^b/(?P<slug>{board.SLUG_PATTERN})"
MOVE_PATH = re.compile(rf"/b/{board.SLUG_PATTERN}/move")
# django-stubs types its scope as a dict, not a Scope.
django_app: ASGI3Application = django_asgi_app  # type: ignore[assignment]
# The requests every player and viewer makes, many times: Django's views and middleware on one
# thread that keeps its database connection, not a thread per request (snake/handler.py).
handler = ThreadHandler()
threaded_app = cap_move_bodies(handler, MOVE_PATH)

application = ProtocolTypeRouter(
    {
        "http": URLRouter(
            [
                stream_path(
                    rf"{SLUG}/events/$",
                    channel.name("{slug}"),  # the channel, as a format string over the URL
                    threaded_app,  # the GRIP proxy's holds
                ),
                asgi_path(rf"{SLUG}/(move|state)$", threaded_app),
                asgi_path(r"", django_app),
            ]
        )
    }
)

# Where Pushpin holds the streams, every worker hears its counts from the start, not from the
# first stream it hands over: the survivor of two holds the count if the other dies.
listen()

# A connect storm of 10,000 viewers grows the heap by a million objects, and each full
# collection on the way scans all of them (seen: 8 full collections, 1.8 s of a 13 s storm).
# What exists once the app is built lives as long as the process: out of every collection.
# Young collections every 10,000 allocations rather than 700 (the older thresholds as Python's):
# the storm's opening took 2.7 s instead of 3.2 (`make bench`'s --storm, README).
gc.freeze()
gc.set_threshold(10_000, 10, 10)

# The handler's thread gives up the GIL at every SQLite call, and while the loop writes a
# fan-out it got it back only at Python's 5 ms switch interval: a move, several calls, waited
# tens of ms. At 1 ms: burst moves/s x0.3 -> x0.5-0.6 the write floor's, POST p99 x6-8 -> x3
# (bench --burst, two interleaved runs).
sys.setswitchinterval(0.001)
