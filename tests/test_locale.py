"""The committed catalogues: each .po wholly translated, and its compiled .mo beside it up to date.

A fresh clone serves Spanish with no extra step, so the .mo is in the tree; this is what keeps it
from drifting behind an edited .po (run `manage.py compilemessages` and commit both).
"""

from __future__ import annotations

import ast
import gettext
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "locale"
CATALOGUES = sorted(LOCALE.glob("*/LC_MESSAGES/django.po"))
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


def entries(po: Path) -> list[dict[str, object]]:
    """Read a .po file: each entry's flags, msgctxt, msgid, msgid_plural, msgstr or msgstr[n]."""
    found: list[dict[str, object]] = []
    for block in po.read_text(encoding="utf-8").split("\n\n"):
        entry: dict[str, object] = {"flags": set()}
        key = ""
        for line in block.splitlines():
            if line.startswith("#~"):
                break  # obsolete: not compiled
            if line.startswith("#,"):
                entry["flags"] = {flag.strip() for flag in line[2:].split(",")}
            elif match := re.fullmatch(
                r"(msgctxt|msgid|msgid_plural|msgstr(?:\[\d+\])?) (\".*\")", line
            ):
                key = match.group(1)
                entry[key] = ast.literal_eval(match.group(2))
            elif line.startswith('"'):
                entry[key] = str(entry[key]) + ast.literal_eval(line)
        if "msgid" in entry:
            found.append(entry)
    return found


def messages(po: Path) -> dict[object, str]:
    """The catalogue as Python's gettext keys it: "context\\x04msgid", plurals by (msgid, n)."""
    catalogue: dict[object, str] = {}
    for entry in entries(po):
        msgid = str(entry["msgid"])
        if not msgid:
            continue  # the header
        if "msgctxt" in entry:
            msgid = f"{entry['msgctxt']}\x04{msgid}"
        for key, text in entry.items():
            if key == "msgstr":
                catalogue[msgid] = str(text)
            elif isinstance(key, str) and key.startswith("msgstr["):
                catalogue[(msgid, int(key[7:-1]))] = str(text)
    return catalogue


def test_every_language_but_the_default_has_a_catalogue() -> None:
    languages = {code for code, _ in settings.LANGUAGES} - {settings.LANGUAGE_CODE}
    assert {po.parent.parent.name for po in CATALOGUES} == languages


@pytest.mark.parametrize("po", CATALOGUES, ids=lambda po: po.parent.parent.name)
def test_every_message_is_translated_and_none_is_fuzzy(po: Path) -> None:
    found = entries(po)
    assert len(found) > 1, po  # more than the header
    assert [e["msgid"] for e in found if "fuzzy" in e["flags"]] == []  # msgfmt drops those
    untranslated = [msgid for msgid, text in messages(po).items() if not text.strip()]
    assert untranslated == []


@pytest.mark.parametrize("po", CATALOGUES, ids=lambda po: po.parent.parent.name)
def test_each_translation_keeps_its_placeholders(po: Path) -> None:
    for msgid, text in messages(po).items():
        original = msgid[0] if isinstance(msgid, tuple) else str(msgid).split("\x04")[-1]
        assert sorted(PLACEHOLDER.findall(text)) == sorted(PLACEHOLDER.findall(original)), msgid


def extracted(tmp_path: Path, language: str) -> Path:
    """makemessages' .po for the code as it is now, made in a copy so the tree is untouched."""
    for part in ("snake", "templates"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "manage.py", tmp_path)
    po = Path("locale", language, "LC_MESSAGES", "django.po")
    (tmp_path / po).parent.mkdir(parents=True)
    shutil.copy(LOCALE / po.relative_to("locale"), tmp_path / po)
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", language, "--no-location"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    return tmp_path / po


@pytest.mark.parametrize("po", CATALOGUES, ids=lambda po: po.parent.parent.name)
def test_every_string_in_the_code_is_in_the_catalogue(po: Path, tmp_path: Path) -> None:
    if shutil.which("xgettext") is None:
        pytest.skip("makemessages needs GNU gettext: apt-get install gettext")
    now = set(messages(extracted(tmp_path, po.parent.parent.name)))
    committed = set(messages(po))
    assert now == committed, (
        f"new in the code: {sorted(map(str, now - committed))}; "
        f"gone from it: {sorted(map(str, committed - now))}. Run makemessages (README, Languages)"
    )


@pytest.mark.parametrize("po", CATALOGUES, ids=lambda po: po.parent.parent.name)
def test_the_committed_mo_is_compiled_from_the_po(po: Path) -> None:
    mo = po.with_suffix(".mo")
    assert mo.is_file(), f"{mo} is missing: run manage.py compilemessages and commit it"
    with mo.open("rb") as compiled:
        # GNUTranslations keeps every message, keyed as messages() keys them, in _catalog.
        catalogue = dict(gettext.GNUTranslations(compiled)._catalog)
    header = catalogue.pop("")
    assert catalogue == messages(po), f"{mo} is stale: run manage.py compilemessages"
    assert f"Language: {po.parent.parent.name}" in header


@pytest.mark.parametrize(
    ("count", "said"), [(1, "1 tablero congelado"), (2, "2 tableros congelados")]
)
def test_the_spanish_plural_follows_the_count(count: int, said: str) -> None:
    from snake import admin

    with translation.override("es"):
        assert admin.FROZEN % {"count": count} == said
    assert admin.FROZEN % {"count": count} == f"{count} board{'s' * (count > 1)} frozen"
