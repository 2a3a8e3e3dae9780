from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Logo(models.Model):
    """An uploaded logo, re-encoded (snake/logos.py), named by the sha256 of its bytes."""

    sha256 = models.CharField(max_length=64, primary_key=True)
    format = models.CharField(max_length=4)  # png, webp or jpeg: the URL's extension
    data = models.BinaryField()
    width = models.PositiveSmallIntegerField()
    height = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.sha256[:12]}.{self.format} ({self.width} x {self.height})"


class Board(models.Model):
    """One room's shared position and own state; a row exists once it moved or was moderated."""

    slug = models.SlugField(max_length=40, primary_key=True)
    x = models.IntegerField()
    y = models.IntegerField()
    seq = models.PositiveBigIntegerField(default=0, help_text=_("Number of applied moves."))
    published_seq = models.PositiveBigIntegerField(
        default=0, help_text=_("Newest seq sent to viewers: publishes go out in seq order.")
    )
    # Set by the move's UPDATE (snake/board.py), not auto_now: a moderator's edit is no move.
    updated_at = models.DateTimeField(_("last move"), default=timezone.now)
    # The board's own state, which moderators set (snake/moderation.py); `version` orders its
    # `board` events as `seq` orders the moves' `position` events.
    title = models.CharField(max_length=60, blank=True, help_text=_("Shown instead of the slug."))
    frozen = models.BooleanField(default=False, help_text=_("Moves refused (423) while set."))
    logo = models.ForeignKey(
        Logo,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        help_text=_("Empty: the bundled one."),
    )
    version = models.PositiveBigIntegerField(
        default=1,
        help_text=_("Bumped by every change of title, logo or frozen: the board event's."),
    )

    def __str__(self) -> str:
        return f"{self.slug} ({self.x}, {self.y}) #{self.seq}"
