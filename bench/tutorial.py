"""Configuration (c) of `make bench`: the original tutorial's design on today's Channels.

A 2018 tutorial moved a logo with WASD over Django Channels websockets: every browser opened a
websocket to a consumer that joined one group, every move was `group_send` to that group, and
each consumer forwarded the message to its socket. This is that design, bench-only and
self-contained (Django configured here, no database, boards in this process's memory, channels'
InMemoryChannelLayer), served by daphne as the tutorial was:

    .venv/bin/python -m daphne -e tcp:18500:interface=127.0.0.1 bench.tutorial:application

Just enough of README.md's contract for bench.fanout: `GET /` (200, a `csrftoken` cookie),
`POST /b/<slug>/move` (`direction`; answers `{"slug","x","y","seq"}` and `group_send`s the logo
fragment the app sends), `GET /b/<slug>/state`, and the websocket `/ws/b/<slug>/`, whose first
text frame is the current position and every later one a move. One group per board (all of a
board's viewers in it), so boards do not see each other's moves; the bench uses one board.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-tutorial-" + secrets.token_hex(16),
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[],
        MIDDLEWARE=[],
        DATABASES={},
        USE_TZ=True,
        CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
    )
    django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.layers import get_channel_layer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.http import HttpRequest, HttpResponse, JsonResponse  # noqa: E402
from django.urls import path, re_path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402

WIDTH, HEIGHT, LOGO_W, LOGO_H, STEP = 1200, 700, 160, 48, 5
START_X, START_Y = 500, 150
STEPS = {"w": (0, -1), "a": (-1, 0), "s": (0, 1), "d": (1, 0)}
SLUG = r"(?P<slug>[a-z0-9][a-z0-9-]{0,39})"


@dataclass
class Board:
    slug: str
    x: int = START_X
    y: int = START_Y
    seq: int = 0

    def state(self) -> dict[str, object]:
        return {"slug": self.slug, "x": self.x, "y": self.y, "seq": self.seq}

    def fragment(self) -> str:
        return (
            f'<div id="logo" class="logo" style="left: {self.x}px; top: {self.y}px" '
            f'data-x="{self.x}" data-y="{self.y}" data-seq="{self.seq}"></div>'
        )


BOARDS: dict[str, Board] = {}


def board(slug: str) -> Board:
    return BOARDS.setdefault(slug, Board(slug))


def group(slug: str) -> str:
    return f"board-{slug}"


def page(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(b"<!doctype html><title>tutorial</title><div id=board></div>\n")
    response.set_cookie("csrftoken", secrets.token_hex(16))
    return response


def state(request: HttpRequest, slug: str) -> JsonResponse:
    return JsonResponse(board(slug).state())


@csrf_exempt
async def move(request: HttpRequest, slug: str) -> HttpResponse:
    if request.method != "POST":
        return HttpResponse(status=405)
    direction = request.POST.get("direction", "").lower()
    if direction not in STEPS:
        return JsonResponse({"error": "direction must be one of w, a, s, d"}, status=400)
    b, (dx, dy) = board(slug), STEPS[direction]
    x, y = b.x + dx * STEP, b.y + dy * STEP
    if 0 <= x <= WIDTH - LOGO_W and 0 <= y <= HEIGHT - LOGO_H:
        b.x, b.y, b.seq = x, y, b.seq + 1
        layer = get_channel_layer()
        assert layer is not None
        await layer.group_send(group(slug), {"type": "board.move", "html": b.fragment()})
    return JsonResponse(b.state())


class BoardConsumer(AsyncWebsocketConsumer):
    """The tutorial's consumer: join the board's group, forward every group message."""

    async def connect(self) -> None:
        self.slug: str = self.scope["url_route"]["kwargs"]["slug"]
        await self.channel_layer.group_add(group(self.slug), self.channel_name)
        await self.accept()
        await self.send(text_data=board(self.slug).fragment())

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(group(self.slug), self.channel_name)

    async def board_move(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["html"])


urlpatterns = [
    path("", page),
    re_path(rf"^b/{SLUG}/$", page),
    re_path(rf"^b/{SLUG}/move$", move),
    re_path(rf"^b/{SLUG}/state$", state),
]

application = ProtocolTypeRouter(
    {
        "http": get_asgi_application(),
        "websocket": URLRouter([re_path(rf"^ws/b/{SLUG}/$", BoardConsumer.as_asgi())]),
    }
)
