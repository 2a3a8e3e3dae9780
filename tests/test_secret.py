from __future__ import annotations

import stat
from pathlib import Path

from snake.secret import dev_secret_key


def test_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "var" / "secret_key"
    first = dev_secret_key(path)
    assert len(first) >= 50
    assert dev_secret_key(path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_existing_key_is_read_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "secret_key"
    path.write_text("kept-key\n")
    assert dev_secret_key(path) == "kept-key"
