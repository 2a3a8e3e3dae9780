"""An outside service's outage is logged once as it starts and once as it ends."""

from __future__ import annotations

import logging

from snake.health import Health, logger


class Recorded(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_an_outage_is_logged_once_each_way() -> None:
    health, recorded = Health("Thing", "moves go on without it"), Recorded()
    logger.addHandler(recorded)
    try:
        health.ok()
        for _ in range(3):
            health.failed(OSError("refused"))
        health.ok()
        health.ok()
        health.failed(OSError("again"))
    finally:
        logger.removeHandler(recorded)
    assert [(r.levelno, r.getMessage()) for r in recorded.records] == [
        (logging.ERROR, "Thing is down (refused); moves go on without it"),
        (logging.WARNING, "Thing is back"),
        (logging.ERROR, "Thing is down (again); moves go on without it"),
    ]
