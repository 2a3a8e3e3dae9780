from __future__ import annotations

from django.db import models


class Board(models.Model):
    """One room's shared position; a row exists once its first move was applied."""

    slug = models.SlugField(max_length=40, primary_key=True)
    x = models.IntegerField()
    y = models.IntegerField()
    seq = models.PositiveBigIntegerField(default=0, help_text="Number of applied moves.")
    published_seq = models.PositiveBigIntegerField(
        default=0, help_text="Newest seq sent to viewers: publishes go out in seq order."
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.slug} ({self.x}, {self.y}) #{self.seq}"
