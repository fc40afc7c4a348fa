import threading, time, sys
sys.path.insert(0, ".")
from werkzeug.serving import make_server
from playwright.sync_api import sync_playwright
from clusterlens.app import create_app, make_demo_project
from clusterlens.survey import FitsDirectoryCutouts
import shutil
shutil.rmtree("/tmp/shots", ignore_errors=True)
path, cut = make_demo_project("/tmp/shots", n=48, n_lenses=16, size=240, seed=7)
from clusterlens.loop import SearchProject
p = SearchProject(path)
q = p.inspection_queue(1)
# a colleague graded a few already
import numpy as np
for it in q[:6]:
    p.record_decision(it["id"], 1, "Chen", is_lens=True, grade="B")
now = time.time()
for i, (lens, grade) in enumerate([(False, None)] * 4 + [(True, "A")]):
    p.record_decision(q[i]["id"], 1, "Zhang", is_lens=lens, grade=grade, decided_at=now - 9.5 * (6 - i) + (i % 2))
p.set_grader_position("Zhang", 1, q[5]["id"])
app = create_app(path, FitsDirectoryCutouts(cut), size=240, crop=150)
srv = make_server("127.0.0.1", 0, app, threaded=True)
threading.Thread(target=srv.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{srv.server_port}"
ARGS=["--headless","--no-sandbox","--disable-gpu","--disable-quic","--no-first-run","--disable-background-networking","--disable-component-update","--disable-sync"]
from clusterlens.app.synthetic import synthetic_cutout
with sync_playwright() as pw:
    b = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
    pg = b.new_context(viewport={"width":1360,"height":820}, bypass_csp=True, device_scale_factor=1).new_page()
    pg.goto(url + "/grade?grader=Zhang")
    pg.wait_for_function("window.__clusterlens.ready")
    time.sleep(0.5)
    keys = sys.argv[1] if len(sys.argv) > 1 else "annbn"
    for k in keys:
        pg.keyboard.press(k); time.sleep(0.35)
    pg.wait_for_function("window.__clusterlens.pending() === 0")
    time.sleep(0.6)
    if len(sys.argv) > 2:
        box = pg.locator("#cutout").bounding_box()
        for fx, fy in [(0.662, 0.39), (0.683, 0.47), (0.675, 0.55)]:
            pg.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"]); time.sleep(0.1)
        time.sleep(0.3)
        pg.screenshot(path="docs/images/inspect-grading.png")
        pg.keyboard.press("m"); time.sleep(0.3)
        pg.keyboard.press("ArrowLeft"); pg.keyboard.press("ArrowLeft")
        pg.wait_for_function("Array.from(document.images).every(i => i.complete)")
        time.sleep(1.0)
        pg.screenshot(path="docs/images/inspect-grid.png")
    pg.screenshot(path="/tmp/before.png")
    print(pg.inner_text("#obj-id"))
    b.close()
