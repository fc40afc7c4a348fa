"""Make docs/images/inspect-grading.png and inspect-grid.png (run from the repository root).

Needs Playwright and Chromium at /usr/bin/chromium:
``PYTHONPATH=. python docs/images/inspect_screenshots.py``. A demo project with synthetic
cutouts is built in a temporary folder; a colleague ("Chen") has graded the first six
candidates, "Zhang" the first five, nine or ten seconds apart; Zhang grades the sixth with
the keyboard and marks the arc of the seventh.
"""

import tempfile
import threading
import time
from pathlib import Path

from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

from clusterlens.app import create_app, make_demo_project
from clusterlens.loop import SearchProject
from clusterlens.survey import FitsDirectoryCutouts
from tests.test_app import CHROMIUM, CHROMIUM_ARGS

OUT = Path(__file__).resolve().parent
# where the arc of the seventh candidate lies, as fractions of the image (found by eye)
ARC_CLICKS = [(0.662, 0.39), (0.683, 0.47), (0.675, 0.55)]


def main():
    path, cutouts = make_demo_project(tempfile.mkdtemp(), n=48, n_lenses=16, size=240, seed=7)
    project = SearchProject(path)
    queue = project.inspection_queue(1)
    for item in queue[:6]:
        project.record_decision(item["id"], 1, "Chen", is_lens=True, grade="B")
    now = time.time()
    calls = [(False, None)] * 4 + [(True, "A")]
    for i, (lens, grade) in enumerate(calls):
        when = now - 9.5 * (6 - i) + i % 2
        project.record_decision(
            queue[i]["id"], 1, "Zhang", is_lens=lens, grade=grade, decided_at=when
        )
    project.set_grader_position("Zhang", 1, queue[5]["id"])
    app = create_app(path, FitsDirectoryCutouts(cutouts), size=240, crop=150)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1360, "height": 820}, bypass_csp=True)
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{server.server_port}/grade?grader=Zhang")
        page.wait_for_function("window.__clusterlens.ready")
        page.keyboard.press("b")
        page.wait_for_function("window.__clusterlens.pending() === 0")
        page.wait_for_function("document.getElementById('cutout').complete")
        box = page.locator("#cutout").bounding_box()
        for fx, fy in ARC_CLICKS:
            page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
        time.sleep(0.8)
        page.screenshot(path=OUT / "inspect-grading.png")
        page.keyboard.press("m")
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("ArrowLeft")
        page.wait_for_function("Array.from(document.images).every(i => i.complete)")
        time.sleep(1.0)
        page.screenshot(path=OUT / "inspect-grid.png")
        browser.close()
    server.shutdown()


if __name__ == "__main__":
    main()
