"""Uploaded logos: checked and re-encoded by Pillow, stored in the database by content hash.

Only PNG, WebP and JPEG, at most MAX_BYTES and MAX_SIDE px a side; never SVG (a script can
hide in one). Re-encoding drops whatever else the file carried (metadata, trailing bytes), and
the stored bytes are served at /logos/<sha256>.<format>, so a URL never changes its picture.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import IO

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from PIL import Image, UnidentifiedImageError

from snake.models import Logo

MAX_BYTES = 256 * 1024
MAX_SIDE = 512
FORMATS = {"PNG": "png", "WEBP": "webp", "JPEG": "jpeg"}
NOT_AN_IMAGE = gettext_lazy("That is not a PNG, WebP or JPEG image (SVG is never taken).")
CONTENT_TYPES = {"png": "image/png", "webp": "image/webp", "jpeg": "image/jpeg"}


class LogoRefused(ValueError):
    """The upload is not a logo we take; the message says what would be."""


def _opened(data: bytes) -> Image.Image:
    """Open and fully decode an image of at most MAX_SIDE px a side."""
    try:
        image = Image.open(io.BytesIO(data), formats=list(FORMATS))  # reads the header only
    except (UnidentifiedImageError, OSError) as exc:
        raise LogoRefused(str(NOT_AN_IMAGE)) from exc
    if max(image.size) > MAX_SIDE:  # before decoding: a small file may claim a huge picture
        width, height = image.size
        raise LogoRefused(
            _("A logo is at most %(max)d px a side, not %(width)d x %(height)d.")
            % {"max": MAX_SIDE, "width": width, "height": height}
        )
    try:
        image.load()  # decodes it all: a truncated or corrupt file fails here, not later
    except OSError as exc:
        raise LogoRefused(str(NOT_AN_IMAGE)) from exc
    return image


@dataclass(frozen=True)
class Encoded:
    format: str  # png, webp or jpeg
    data: bytes
    width: int
    height: int


def encode(upload: IO[bytes]) -> Encoded:
    """Check an upload and re-encode it, or raise LogoRefused saying what is taken."""
    data = upload.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise LogoRefused(
            _("A logo is at most %(kb)d KB: make the file smaller.") % {"kb": MAX_BYTES // 1024}
        )
    image = _opened(data)
    fmt = FORMATS[str(image.format)]
    out = io.BytesIO()
    mode = "RGB" if fmt == "jpeg" else "RGBA"
    image.convert(mode).save(out, format=image.format)  # no info= passed: no metadata kept
    return Encoded(fmt, out.getvalue(), *image.size)


def store(encoded: Encoded) -> Logo:
    """Store a re-encoded logo, once per picture; return it."""
    sha = hashlib.sha256(encoded.data).hexdigest()
    fields = {"format": encoded.format, "data": encoded.data}
    logo, _ = Logo.objects.get_or_create(
        sha256=sha, defaults={**fields, "width": encoded.width, "height": encoded.height}
    )
    return logo


def find(name: str) -> tuple[bytes, str] | None:
    """Return the stored logo `<sha256>.<format>`'s bytes and content type, if there is one."""
    sha, _, fmt = name.partition(".")
    data = Logo.objects.filter(sha256=sha, format=fmt).values_list("data", flat=True).first()
    return None if data is None else (bytes(data), CONTENT_TYPES[fmt])
