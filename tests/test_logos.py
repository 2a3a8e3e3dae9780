"""Uploaded logos: only small PNG, WebP and JPEG pictures, re-encoded, stored by content hash."""

from __future__ import annotations

import hashlib
import io
import zlib

import pytest
from PIL import Image, PngImagePlugin

from snake import logos
from snake.models import Logo


def picture(fmt: str, size: tuple[int, int] = (64, 32), **save: object) -> io.BytesIO:
    out = io.BytesIO()
    mode = "RGB" if fmt == "JPEG" else "RGBA"
    Image.new(mode, size, (200, 30, 30)).save(out, format=fmt, **save)
    out.seek(0)
    return out


@pytest.mark.parametrize(("fmt", "ext"), [("PNG", "png"), ("WEBP", "webp"), ("JPEG", "jpeg")])
def test_png_webp_and_jpeg_are_taken_and_re_encoded(fmt: str, ext: str) -> None:
    encoded = logos.encode(picture(fmt))
    assert (encoded.format, encoded.width, encoded.height) == (ext, 64, 32)
    assert Image.open(io.BytesIO(encoded.data)).format == fmt


def test_metadata_and_trailing_bytes_do_not_survive() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "<script>alert(1)</script>")
    upload = io.BytesIO(picture("PNG", pnginfo=info).getvalue() + b"<script>trailing</script>")
    data = logos.encode(upload).data
    assert b"script" not in data and b"Comment" not in data


@pytest.mark.parametrize(
    ("upload", "says"),
    [
        (picture("GIF"), "not a PNG, WebP or JPEG"),
        (
            io.BytesIO(b'<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>'),
            "SVG is never taken",
        ),
        (io.BytesIO(b"not an image at all"), "not a PNG, WebP or JPEG"),
        (io.BytesIO(picture("PNG").getvalue()[:60]), "not a PNG, WebP or JPEG"),  # truncated
        (picture("PNG", (513, 10)), "at most 512 px a side, not 513 x 10"),
        (io.BytesIO(b"\x89PNG" + b"\0" * (256 * 1024)), "at most 256 KB"),
    ],
    ids=["gif", "svg", "text", "truncated", "too-wide", "too-big"],
)
def test_anything_else_is_refused_saying_what_is_taken(upload: io.BytesIO, says: str) -> None:
    with pytest.raises(logos.LogoRefused, match=says.replace("(", r"\(")):
        logos.encode(upload)


def test_a_small_file_claiming_a_huge_picture_is_refused_before_decoding() -> None:
    huge = picture("PNG", (1, 1)).getvalue()
    # The IHDR chunk's width field, rewritten: the file stays tiny, the picture 100,000 px wide.
    ihdr = b"IHDR" + (100_000).to_bytes(4, "big") + huge[20:29]
    forged = huge[:12] + ihdr + zlib.crc32(ihdr).to_bytes(4, "big") + huge[33:]
    with pytest.raises(logos.LogoRefused, match="at most 512 px a side"):
        logos.encode(io.BytesIO(forged))


@pytest.mark.django_db
def test_a_picture_is_stored_once_under_its_hash_and_found_by_name() -> None:
    first = logos.store(logos.encode(picture("PNG")))
    again = logos.store(logos.encode(picture("PNG")))
    assert first.sha256 == again.sha256 == hashlib.sha256(bytes(first.data)).hexdigest()
    assert Logo.objects.count() == 1
    data, content_type = logos.find(f"{first.sha256}.png") or (b"", "")
    assert content_type == "image/png" and data == bytes(first.data)
    assert logos.find(f"{first.sha256}.webp") is None and logos.find("0" * 64 + ".png") is None
