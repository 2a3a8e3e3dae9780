from __future__ import annotations

from django.apps import AppConfig


class SnakeConfig(AppConfig):
    name = "snake"

    def ready(self) -> None:
        from snake import fanout

        fanout.supervise_redis_listener()
