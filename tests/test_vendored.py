from __future__ import annotations

import hashlib
import re
from pathlib import Path

VENDOR = Path(__file__).resolve().parent.parent / "static" / "vendor"
ROW = re.compile(r"^\| (\S+\.js) \| (\S+) \| (\S+) \| \S+ \| ([0-9a-f]{64}) \| (\S+) \|$", re.M)


def rows() -> list[tuple[str, ...]]:
    return ROW.findall((VENDOR / "VENDORED.md").read_text())


def test_every_vendored_file_matches_its_recorded_sha256() -> None:
    listed = rows()
    assert listed, "VENDORED.md lists no files"
    for name, _package, _version, digest, _licence in listed:
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name


def test_every_script_in_vendor_is_listed() -> None:
    assert {p.name for p in VENDOR.glob("*.js")} == {r[0] for r in rows()}


def test_htmx_is_2_0_not_4() -> None:
    versions = {r[1]: r[2] for r in rows()}
    assert versions["htmx.org"].startswith("2.0.")
    assert f'version:"{versions["htmx.org"]}"' in (VENDOR / "htmx.min.js").read_text()
    assert versions["htmx-ext-sse"].startswith("2.2.")
