"""`make run`'s app with the board's `presence` event off: the other half of presence's cost.

    .venv/bin/python -m bench.run --kinds floor,uvicorn,quiet --viewers 1000,3000 --runs 3

The same snake.asgi application, served by the same uvicorn; only the board's owner registers
no presence function, so rooms count their viewers but never render or send a `presence` event
(snake/stream/presence.py). What `uvicorn` costs over `quiet`, against the floor of the same
run, is what showing who is here costs the fan-out.
"""

from __future__ import annotations

from snake.asgi import application  # first: it sets Django up

# isort: split
from snake import channel, stream

stream.register(channel.PREFIX, channel.snapshot)  # again: now with no presence function

__all__ = ["application"]
