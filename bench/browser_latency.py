"""Time from a key press in one Chromium to the logo moving in another, on a fresh daphne.

.venv/bin/python -m bench.browser_latency [MOVES]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.live import Daphne

# Runs in the watching page: note when #logo's data-seq reaches each value.
WATCH = """() => {
  window.seen = {};
  new MutationObserver(() => {
    const logo = document.getElementById('logo');
    if (logo) window.seen[logo.dataset.seq] ??= performance.timeOrigin + performance.now();
  }).observe(document.getElementById('board'), {subtree: true, childList: true, attributes: true});
}"""


def main(moves: int = 50) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = Daphne(Path(tmp))
        server.start()
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path="/usr/bin/chromium",
                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
                )
                url = f"{server.url}/b/latency/"
                one = browser.new_context().new_page()
                two = browser.new_context().new_page()
                one.goto(url)
                two.goto(url)
                two.evaluate(WATCH)
                delays = []
                for seq in range(1, moves + 1):
                    one.wait_for_timeout(100)  # keys are throttled to one move per 80 ms
                    start = one.evaluate("performance.timeOrigin + performance.now()")
                    one.keyboard.press("d" if seq % 2 else "a")
                    two.wait_for_function(f"window.seen['{seq}'] !== undefined")
                    delays.append(two.evaluate(f"window.seen['{seq}']") - start)
                browser.close()
        finally:
            server.stop()
    delays.sort()
    p95 = delays[int(len(delays) * 0.95) - 1]
    median = statistics.median(delays)
    print(f"{moves} key presses, press -> other browser's DOM: median {median:.1f} ms, "
          f"p95 {p95:.1f} ms, max {delays[-1]:.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
