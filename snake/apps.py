from __future__ import annotations

from django.apps import AppConfig


class SnakeConfig(AppConfig):
    name = "snake"

    def ready(self) -> None:
        from snake import channel, checks  # noqa: F401 -- checks registers them on import
        from snake.stream import delivery

        channel.register()
        delivery.supervise_redis_listener()
