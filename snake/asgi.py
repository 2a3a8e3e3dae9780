"""ASGI entry point, served by daphne (`make run`)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "snake.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402  (needs Django set up first)

from snake.bodylimit import cap_move_bodies  # noqa: E402
from snake.consumers import router  # noqa: E402

application = ProtocolTypeRouter({"http": router(cap_move_bodies(django_asgi_app))})
