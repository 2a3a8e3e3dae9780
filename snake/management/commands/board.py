"""Look after a board from the command line; every viewer of the running server sees the change.

    python manage.py board freeze|unfreeze|reset|show SLUG
    python manage.py board prune --days N

Each prints the board's state after, as one JSON line. How the change reaches the viewers: with
Redis or a GRIP proxy configured, this process publishes as a worker does; else (`make run`)
it asks the server on this machine (SNAKE_SERVER_URL, default http://127.0.0.1:$PORT) to show
the stored state, a loopback request signed with SECRET_KEY (snake/guards/local.py).
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from typing import Any

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse
from django.utils import timezone

from snake import actions, board, channel, moderation
from snake.guards import local
from snake.models import Board

ACTIONS = ("freeze", "unfreeze", "reset", "show")


def server_url() -> str:
    default = f"http://127.0.0.1:{os.environ.get('PORT') or 8000}"
    return (os.environ.get("SNAKE_SERVER_URL") or default).rstrip("/")


class Command(BaseCommand):
    help = "Freeze, unfreeze, reset or show a board, or prune idle ones; viewers see it at once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=(*ACTIONS, "prune"))
        parser.add_argument("slug", nargs="?", help="the board (all but prune)")
        parser.add_argument("--days", type=int, help="prune: boards idle this many days")

    def handle(self, *args: Any, action: str, slug: str | None, days: int | None, **_: Any) -> None:
        if action == "prune":
            self._prune(days)
            return
        if slug is None or not board.is_valid_slug(slug):
            raise CommandError("name the board: 1-40 lower-case letters, digits or dashes")
        if action in ("freeze", "unfreeze"):
            actions.freeze(slug, action == "freeze")
        elif action == "reset":
            actions.reset(slug)
        if action != "show":
            self._reach_viewers(slug)
        self.stdout.write(json.dumps(state(slug)))

    def _prune(self, days: int | None) -> None:
        if days is None or days < 1:
            raise CommandError("prune needs --days N, N >= 1: boards not moved in N days go")
        idle = Board.objects.filter(updated_at__lt=timezone.now() - timedelta(days=days))
        pruned, kept = actions.delete(list(idle.values_list("slug", flat=True)), self._watching)
        self.stdout.write(json.dumps({"pruned": pruned, "kept_watched": kept}))

    def _watching(self, slug: str) -> int:
        """Return how many watch the board: counted in Redis, else asked of the server."""
        if settings.REDIS_URL:
            return channel.watching(slug)
        try:
            return int(httpx.get(f"{server_url()}/b/{slug}/state", timeout=5).json()["viewers"])
        except (httpx.HTTPError, ValueError, KeyError):
            return 0  # no server running: no one watches

    def _reach_viewers(self, slug: str) -> None:
        if settings.REDIS_URL or settings.SNAKE_GRIP_URL:
            return  # published as the change committed, on the paths every worker hears
        url = server_url() + reverse("republish", args=[slug])
        try:
            answer = httpx.post(url, headers=local.sign(slug), timeout=5)
        except httpx.HTTPError as exc:
            self.stderr.write(f"no server answered at {url} ({exc}): the change is stored, "
                              "and viewers see it when their pages next load")  # fmt: skip
            return
        if answer.status_code != 204:
            raise CommandError(f"{url} answered {answer.status_code}: {answer.text[:200]}")


def state(slug: str) -> dict[str, object]:
    position, meta = board.current(slug), moderation.meta(slug)
    return {**position.as_dict(), "title": meta.shown_title, "frozen": meta.frozen}
