"""Under CI=true a skipped test fails the run: CI must never pass on what it did not run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# A browser test whose Chromium is missing (SNAKE_CHROMIUM points nowhere), beside one that runs.
SAMPLE = """
from tests.browser import needs_chromium


def test_that_runs():
    pass


@needs_chromium
def test_that_needs_chromium():
    pass
"""


def run_pytest(tmp_path: Path, ci: str | None, *select: str) -> subprocess.CompletedProcess[str]:
    """Run pytest on SAMPLE with this project's config and conftest, in a process of its own."""
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    env = {**os.environ, "SNAKE_CHROMIUM": str(tmp_path / "no-chromium")}
    env.pop("CI", None)
    env.pop("PYTEST_ADDOPTS", None)
    if ci is not None:
        env["CI"] = ci
    # tests/conftest.py as a plugin: a file outside tests/ would not pick it up as a conftest.
    command = [sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml")]
    command += ["-p", "tests.conftest", "-p", "no:cacheprovider", str(tmp_path), *select]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_under_ci_a_skip_fails_the_run_and_names_what_is_missing(tmp_path: Path) -> None:
    run = run_pytest(tmp_path, "true")
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, run.stdout + run.stderr
    assert "1 passed, 1 skipped" in run.stdout
    assert "no-chromium (apt-get install chromium; .ci/run does)" in run.stdout
    assert "CI=true: a skipped test fails the run" in run.stdout


@pytest.mark.parametrize(("ci", "select"), [(None, ()), ("false", ()), ("true", ("-k", "runs"))])
def test_elsewhere_or_with_nothing_skipped_the_run_passes(
    tmp_path: Path, ci: str | None, select: tuple[str, ...]
) -> None:
    run = run_pytest(tmp_path, ci, *select)
    assert run.returncode == pytest.ExitCode.OK, run.stdout + run.stderr
