"""Log an outside service's failure once when it starts and once when it ends, not per use."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


class Health:
    """One service's state as its users saw it last: failing or not."""

    def __init__(self, name: str, hint: str) -> None:
        self.name, self.hint, self.failing = name, hint, False

    def failed(self, exc: BaseException) -> None:
        if not self.failing:
            self.failing = True
            logger.error("%s is down (%s); %s", self.name, exc, self.hint)

    def ok(self) -> None:
        if self.failing:
            self.failing = False
            logger.warning("%s is back", self.name)
