from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

VENDOR = Path(__file__).resolve().parent.parent / "static" / "vendor"
# Files only the tests use (axe-core): outside static/, so the site never serves them.
TEST_VENDOR = Path(__file__).resolve().parent / "vendor"
ROW = re.compile(r"^\| (\S+\.js) \| (\S+) \| (\S+) \| \S+ \| ([0-9a-f]{64}) \| (\S+) \|$", re.M)


def rows(folder: Path = VENDOR) -> list[tuple[str, ...]]:
    return ROW.findall((folder / "VENDORED.md").read_text())


@pytest.mark.parametrize("folder", [VENDOR, TEST_VENDOR], ids=["static", "tests"])
def test_every_vendored_file_matches_its_recorded_sha256(folder: Path) -> None:
    listed = rows(folder)
    assert listed, f"{folder}/VENDORED.md lists no files"
    for name, _package, _version, digest, _licence in listed:
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name


@pytest.mark.parametrize("folder", [VENDOR, TEST_VENDOR], ids=["static", "tests"])
def test_every_script_in_vendor_is_listed(folder: Path) -> None:
    assert {p.name for p in folder.glob("*.js")} == {r[0] for r in rows(folder)}


def test_htmx_is_2_0_not_4() -> None:
    versions = {r[1]: r[2] for r in rows()}
    assert versions["htmx.org"].startswith("2.0.")
    assert f'version:"{versions["htmx.org"]}"' in (VENDOR / "htmx.min.js").read_text()
    assert versions["htmx-ext-sse"].startswith("2.2.")


def test_axe_core_is_the_recorded_version_under_its_licence() -> None:
    (name, package, version, _digest, licence) = rows(TEST_VENDOR)[0]
    assert (package, licence) == ("axe-core", "MPL-2.0")
    assert (TEST_VENDOR / name).read_text().startswith(f"/*! axe v{version}\n")


@pytest.mark.django_db
def test_the_site_never_serves_the_test_only_files(client: Client) -> None:
    # Served static files beside them answer 200, so a 404 here is the file's, not the setup's.
    served = client.get("/static/vendor/htmx.min.js")
    served.close()  # a file response holds its file open until closed
    assert served.status_code == 200
    for name, *_ in rows(TEST_VENDOR):
        # No finder knows it, so collectstatic never copies it into a deployment either.
        assert finders.find(name) is None and finders.find(f"vendor/{name}") is None, name
        for url in (f"/static/{name}", f"/static/vendor/{name}", f"/static/tests/vendor/{name}"):
            assert client.get(url).status_code == 404, url
