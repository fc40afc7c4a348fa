"""Tests of the inspection app: server checks with Flask's test client, and an end-to-end run
in a real headless Chromium (skipped, with the reason, where Chromium or Playwright is
missing)."""

import json
import os
import shutil
import sqlite3
import statistics
import threading
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from clusterlens.app import create_app, write_synthetic_cutouts
from clusterlens.app.images import band_image
from clusterlens.app.server import check_grader_name
from clusterlens.errors import ClusterlensError, ParameterError
from clusterlens.loop import SearchProject, TopK, einstein_radius_from_points
from clusterlens.loop._schema import MIGRATIONS, SCHEMA_VERSION
from clusterlens.survey import FitsDirectoryCutouts

flask = pytest.importorskip("flask")

SIZE, CROP, SCALE = 64, 40, 0.262
WEIRD = '<b onmouseover="window.__pwned=1">&amp;\'CL7'
IDS = [f"CL{i:03d}" for i in range(15)] + [WEIRD]


class CountingSource(FitsDirectoryCutouts):
    """A cutout folder that counts how often it is read (images must render once)."""

    calls = 0

    def get(self, *args, **kwargs):
        type(self).calls += 1
        return super().get(*args, **kwargs)


def _make(folder: Path, name="search.sqlite"):
    rng = np.random.default_rng(3)
    n = len(IDS)
    objects = Table(
        {
            "id": IDS,
            "ra": rng.uniform(0, 360, n),
            "dec": rng.uniform(-20, 60, n),
            "z": rng.uniform(0.1, 0.9, n),
            "m500": 10 ** rng.uniform(14, 15, n),
        }
    )
    write_synthetic_cutouts(folder / "cutouts", objects, size=SIZE, seed=1, lenses=IDS[:5])
    project = SearchProject.create(folder / name, objects)
    # scores decrease with the index, so the rank of IDS[i] is i
    project.record_iteration("m", IDS, np.linspace(0.99, 0.6, n), TopK(n))
    return project


@pytest.fixture
def project(tmp_path):
    return _make(tmp_path)


@pytest.fixture
def client(project, tmp_path):
    app = create_app(project, CountingSource(tmp_path / "cutouts"), size=SIZE, crop=CROP)
    app.testing = True
    return app.test_client()


def _decide(client, **body):
    base = {"grader": "alice", "object_id": "CL000", "is_lens": True}
    base.update(body)
    return client.post("/api/decide", json=base)


def _snapshot(project):
    return (
        project._read("SELECT * FROM decisions ORDER BY id"),
        project._read("SELECT * FROM grader_positions ORDER BY grader"),
    )


# -- project additions ------------------------------------------------------------------------


def test_schema_v2_migration_and_positions(tmp_path, project):
    assert project.schema_version == SCHEMA_VERSION
    old = tmp_path / "v1.sqlite"
    con = sqlite3.connect(old)
    con.executescript(MIGRATIONS[1])
    con.execute("PRAGMA user_version=1")
    con.commit()
    con.close()
    assert SearchProject(old).schema_version == SCHEMA_VERSION
    assert project.grader_position("alice", 1) is None
    project.set_grader_position("alice", 1, "CL003")
    project.set_grader_position("alice", 1, "CL004")
    assert project.grader_position("alice", 1) == "CL004"
    with pytest.raises(ParameterError, match="not selected"):
        project.set_grader_position("alice", 1, "nope")
    project.record_decision("CL001", 1, "alice", is_lens=True, grade="A", arc_points=[[3, 4]])
    (rec,) = project.decision_records(1, grader="alice")
    assert rec["arc_points"] == [[3.0, 4.0]] and rec["grade"] == "A" and rec["is_lens"] is True
    assert project.delete_decision("CL001", 1, "alice") is True
    assert project.delete_decision("CL001", 1, "alice") is False
    assert project.decision_records(1) == []
    q = project.inspection_queue(1)
    assert [i["id"] for i in q] == IDS and q[0]["rank"] == 0 and q[0]["score"] == 0.99


def test_grader_names():
    for ok in ("alice", "J. Smith", "O'Brien", "Zoë", "x"):
        assert check_grader_name(ok) == ok
    for bad in ("", " alice", "alice ", "<b>", "a" * 41, "a/b", None, 3, "a\nb"):
        with pytest.raises(ParameterError):
            check_grader_name(bad)


def test_band_image_is_north_up():
    plane = np.zeros((8, 8), np.float32)
    plane[0, 0] = 5.0  # FITS row 0 is the southern edge
    grey = band_image(plane + np.random.default_rng(0).normal(0, 0.01, (8, 8)))
    assert grey.dtype == np.uint8 and grey[-1, 0] == grey.max()


# -- server, with the test client -------------------------------------------------------------


def test_decide_others_undo_and_queue(client, project):
    assert client.get("/").status_code == 200
    page = client.get("/grade?grader=alice")
    assert page.status_code == 200 and b'"grader": "alice"' in page.data
    assert client.get("/api/others?grader=alice&object_id=CL000").status_code == 409
    points = [[3.0, 4.0], [-6.0, 8.0]]
    r = _decide(client, grade="A", points=points, position="CL001")
    assert r.status_code == 200 and r.json["r_ein"] == pytest.approx(7.5)
    assert _decide(client, grader="bob", grade="B").status_code == 200
    assert _decide(client, grader="bob", grade="C").status_code == 200  # replaces, no duplicate
    recs = project.decision_records(1)
    assert [(r["grader"], r["grade"]) for r in recs] == [("alice", "A"), ("bob", "C")]
    assert recs[0]["arc_points"] == points
    assert einstein_radius_from_points(recs[0]["arc_points"]) == pytest.approx(7.5)
    others = client.get("/api/others?grader=alice&object_id=CL000").json["others"]
    assert others == [{"grader": "bob", "is_lens": True, "grade": "C", "r_ein": None}]
    q = client.get("/api/queue?grader=alice").json
    assert q["position"] == "CL001" and list(q["mine"]) == ["CL000"]
    assert [i["id"] for i in q["items"]] == IDS
    r = client.post("/api/undo", json={"grader": "alice", "object_id": "CL000"})
    assert r.status_code == 200 and r.json["removed"] is True
    assert [r["grader"] for r in project.decision_records(1)] == ["bob"]
    assert project.grader_position("alice", 1) == "CL000"
    r = client.post("/api/position", json={"grader": "alice", "object_id": WEIRD})
    assert r.status_code == 200 and project.grader_position("alice", 1) == WEIRD


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"is_lens": "yes"}, 400),
        ({"is_lens": 1}, 400),
        ({"grade": "D"}, 400),
        ({"grade": "a"}, 400),
        ({"is_lens": False, "grade": "A"}, 400),
        ({"is_lens": False, "points": [[1, 1]]}, 400),
        ({"points": [[1, 1, 1]]}, 400),
        ({"points": [[100.0, 0.0]]}, 400),  # outside the 8.4 arcsec half-field
        ({"points": [["1", 2]]}, 400),
        ({"points": [[True, 2]]}, 400),
        ({"points": [[1, 2]] * 201}, 400),
        ({"points": {"x": 1}}, 400),
        ({"object_id": "CL999"}, 404),
        ({"object_id": "../search.sqlite"}, 404),
        ({"object_id": 5}, 400),
        ({"grader": "<script>"}, 400),
        ({"grader": ""}, 400),
        ({"position": "nope"}, 404),
        ({"extra": 1}, 400),
    ],
)
def test_malformed_decisions_change_nothing(client, project, body, status):
    before = _snapshot(project)
    r = _decide(client, **body)
    assert r.status_code == status and "error" in r.json
    assert _snapshot(project) == before


def test_malformed_bodies_change_nothing(client, project):
    before = _snapshot(project)
    ok = {"grader": "alice", "object_id": "CL000", "is_lens": True}
    assert client.post("/api/decide", data=json.dumps(ok)).status_code == 415  # not JSON
    r = client.post("/api/decide", data="{not json", content_type="application/json")
    assert r.status_code == 400
    r = client.post("/api/decide", data="[1, 2]", content_type="application/json")
    assert r.status_code == 400
    nan = '{"grader": "alice", "object_id": "CL000", "is_lens": true, "points": [[NaN, 1]]}'
    assert client.post("/api/decide", data=nan, content_type="application/json").status_code == 400
    assert client.post("/api/decide", json={"grader": "alice"}).status_code == 400
    assert client.post("/api/undo", json={"grader": "alice", "object_id": "x"}).status_code == 404
    assert (
        client.post("/api/decide", json=ok, headers={"Origin": "http://evil.example"}).status_code
        == 403
    )
    big = {**ok, "points": [[0.0, 0.0]] * 20000}
    assert client.post("/api/decide", json=big).status_code == 413
    assert client.get("/api/queue?grader=%3Cb%3E").status_code == 400
    assert client.get("/api/queue").status_code == 400
    assert client.get("/api/others?grader=alice&object_id=nope").status_code == 404
    assert client.get("/grade?grader=%3Cscript%3Ealert(1)%3C/script%3E").status_code == 400
    assert _snapshot(project) == before


def test_escaping(tmp_path):
    project = _make(tmp_path, name="<b>x&'.sqlite")
    app = create_app(project, FitsDirectoryCutouts(tmp_path / "cutouts"), size=SIZE, crop=CROP)
    c = app.test_client()
    for url in ("/", "/grade?grader=alice"):
        html = c.get(url).get_data(as_text=True)
        assert "<b>x" not in html
        assert "&lt;b&gt;x&amp;" in html or "\\u003cb\\u003ex\\u0026" in html
    html = c.get("/grade?grader=%3Cscript%3Ealert(1)%3C/script%3E").get_data(as_text=True)
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)" in html
    # ids travel as JSON data only; the page puts them on screen with textContent
    assert WEIRD in [i["id"] for i in c.get("/api/queue?grader=bob").json["items"]]
    assert (
        "innerHTML" not in (Path(__file__).parents[1] / "clusterlens/app/static/app.js").read_text()
    )
    csp = c.get("/").headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp


def test_token_is_required(project, tmp_path):
    app = create_app(
        project,
        FitsDirectoryCutouts(tmp_path / "cutouts"),
        size=SIZE,
        crop=CROP,
        token="s3cret-token",
    )
    c = app.test_client()
    for url in (
        "/",
        "/grade?grader=alice",
        "/api/queue?grader=alice",
        "/static/app.js",
        "/img/1/0/legacy.png",
    ):
        assert c.get(url).status_code == 401, url
    assert (
        c.get("/api/queue?grader=alice", headers={"X-Clusterlens-Token": "wrong"}).status_code
        == 401
    )
    assert _decide(c).status_code == 401 and project.decision_records(1) == []
    good = {"X-Clusterlens-Token": "s3cret-token"}
    assert c.get("/api/queue?grader=alice", headers=good).status_code == 200
    assert c.get("/?token=nope").status_code == 401
    r = c.get("/?token=s3cret-token")
    assert r.status_code == 303 and "HttpOnly" in r.headers["Set-Cookie"]
    assert c.get("/api/queue?grader=alice").status_code == 200  # the cookie now carries it
    assert _decide(c).status_code == 200 and len(project.decision_records(1)) == 1
    with pytest.raises(ParameterError):
        create_app(project, FitsDirectoryCutouts(tmp_path / "cutouts"), size=SIZE, token="short")


def test_nothing_outside_is_served(client, tmp_path):
    (tmp_path / "secret.txt").write_text("TOP SECRET")
    for url in (
        "/static/../server.py",
        "/static/..%2fserver.py",
        "/static/%2e%2e/server.py",
        "/static/..%2f..%2f..%2fsecret.txt",
        "/static//etc/passwd",
        "/img/1/0/../../../search.sqlite",
        "/img/1/0/..%2f..%2fsearch.sqlite",
        "/img/1/99/legacy.png",
        "/img/1/-1/legacy.png",
        "/img/2/0/legacy.png",
        "/img/1/0/secret.png",
        "/search.sqlite",
        "/cutouts/CL000.fits",
        "/secret.txt",
    ):
        r = client.get(url, follow_redirects=True)
        assert r.status_code in (400, 404), url
        assert b"SQLite format" not in r.data and b"TOP SECRET" not in r.data
        assert b"def create_app" not in r.data and b"root:" not in r.data
    assert client.get("/static/app.js").status_code == 200


def test_images_render_once_and_are_cached(client, tmp_path):
    CountingSource.calls = 0
    first = client.get("/img/1/0/legacy.png")
    assert first.status_code == 200 and first.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert "immutable" in first.headers["Cache-Control"]
    for view in ("lupton", "g", "r", "z"):
        assert client.get(f"/img/1/0/{view}.png").status_code == 200
    assert client.get("/img/1/0/legacy.png").data == first.data
    cache = tmp_path / "search.sqlite.inspect"
    assert len(list(cache.glob("*.png"))) >= 5
    assert not any("CL000" in p.name for p in cache.iterdir())  # named by hash, not by id
    from PIL import Image

    with Image.open(cache / next(p.name for p in cache.glob("*-legacy.png"))) as im:
        assert im.size == (SIZE, SIZE)
    # object 0 was read once; the rest of the reads are the background prefetch of ranks 1-8
    assert 1 <= CountingSource.calls <= 9


def test_missing_cutout_is_a_clear_error(client, tmp_path):
    (tmp_path / "cutouts" / "CL003.fits").unlink()
    r = client.get("/img/1/3/legacy.png")
    assert r.status_code == 502 and "CL003" in r.json["error"]


def test_concurrent_graders_lose_and_duplicate_nothing(client, project):
    errors = []

    def grade(name):
        for i, oid in enumerate(IDS):
            for _ in range(2):  # a retried request must not duplicate
                r = _decide(client, grader=name, object_id=oid, is_lens=i % 2 == 0)
                if r.status_code != 200:
                    errors.append(r.json)

    threads = [threading.Thread(target=grade, args=(g,)) for g in ("alice", "bob", "carol")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    recs = project.decision_records(1)
    assert len(recs) == 3 * len(IDS)
    assert len({(r["grader"], r["object_id"]) for r in recs}) == 3 * len(IDS)


def test_cli(tmp_path, project, capsys):
    from clusterlens.cli import build_parser, main
    from clusterlens.cli.inspect import _is_loopback

    args = build_parser().parse_args(
        ["inspect", str(project.path), "--cutouts", "c", "--port", "0"]
    )
    assert args.port == 0 and args.host == "127.0.0.1"
    assert _is_loopback("127.0.0.1") and _is_loopback("::1") and _is_loopback("localhost")
    assert not _is_loopback("0.0.0.0") and not _is_loopback("192.168.1.4")
    assert main(["inspect", str(tmp_path / "none.sqlite")]) == 2
    assert main(["inspect", str(project.path), "--cutouts", str(tmp_path / "nodir")]) == 2
    assert main(["inspect", str(project.path), "--source", "nomodule"]) == 2
    assert main(["inspect", str(project.path), "--cutouts", str(tmp_path), "--iteration", "7"]) == 2
    assert "no iteration 7" in capsys.readouterr().err
    empty = SearchProject.create(tmp_path / "empty.sqlite", Table({"id": ["a"]}))
    with pytest.raises(ClusterlensError, match="no iteration"):
        create_app(empty, FitsDirectoryCutouts(tmp_path / "cutouts"))


# -- end to end, in a real browser ----------------------------------------------------------

CHROMIUM = os.environ.get("CLUSTERLENS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _browser_or_skip():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed (pip install playwright; no browser download)")
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    return sync_playwright


def _start(project_path, folder, port=0, token=None):
    from werkzeug.serving import make_server

    app = create_app(
        project_path, FitsDirectoryCutouts(folder / "cutouts"), size=SIZE, crop=CROP, token=token
    )
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _stop(server):
    server.shutdown()
    server.server_close()


@pytest.fixture
def live(project, tmp_path):
    server = _start(project, tmp_path)
    yield f"http://127.0.0.1:{server.server_port}"
    _stop(server)


def _context(browser):
    # bypass_csp lets the test evaluate its probes; the app itself never needs eval
    return browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)


def _open(browser, url, grader, context=None):
    page = (context or _context(browser)).new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{url}/grade?grader={grader}")
    page.wait_for_function("window.__clusterlens && window.__clusterlens.ready")
    page.wait_for_function("document.getElementById('cutout').complete")
    return page, errors


def _settle(page):
    page.wait_for_function("window.__clusterlens.pending() === 0")


def test_browser_end_to_end(project, live, tmp_path):
    sync_playwright = _browser_or_skip()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            alice, alice_errors = _open(browser, live, "alice")
            bob, bob_errors = _open(browser, live, "bob")
            assert alice.inner_text("#obj-id") == "CL000"
            assert "Other graders' calls appear after yours" in alice.inner_text("#others")

            # two graders at once, keys interleaved
            alice.keyboard.press("a")  # CL000: lens, A
            bob.keyboard.press("n")  # CL000: not a lens
            alice.keyboard.press("n")  # CL001: not a lens
            # CL002: mark the arc with three clicks, then grade B
            box = alice.locator("#cutout").bounding_box()
            clicks = [(0.70, 0.50), (0.50, 0.25), (0.35, 0.40)]
            for fx, fy in clicks:
                alice.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
            assert "from 3 points" in alice.inner_text("#rein")
            alice.keyboard.press("b")
            bob.keyboard.press("c")  # CL001: lens, C
            alice.keyboard.press("s")  # skip CL003
            alice.keyboard.press("l")  # CL004: lens
            alice.keyboard.press("u")  # undo CL004
            assert alice.inner_text("#obj-id") == "CL004"
            for _ in range(6):  # page turns, to measure them
                alice.keyboard.press("ArrowRight")
                alice.wait_for_timeout(60)
            for _ in range(6):
                alice.keyboard.press("ArrowLeft")
                alice.wait_for_timeout(60)
            _settle(alice)
            _settle(bob)
            turns = alice.evaluate("window.__clusterlens.turns")

            # after her own call alice sees bob's on the same object
            bob.keyboard.press("ArrowLeft")
            bob.keyboard.press("ArrowLeft")
            assert bob.inner_text("#obj-id") == "CL000"
            bob.wait_for_function("document.getElementById('others').innerText.includes('alice')")
            assert "lens, grade A" in bob.inner_text("#others")

            # reload: alice is back where she was, with her decisions
            alice.reload()
            alice.wait_for_function("window.__clusterlens.ready")
            assert alice.inner_text("#obj-id") == "CL004"
            assert "3 / 16 decided" in alice.inner_text("#progress")

            # grid view, same keys: move to the weird id (rank 15) on page 2 and reject it
            alice.keyboard.press("m")
            assert alice.locator(".tile").count() == 12
            alice.keyboard.press("PageDown")
            alice.keyboard.press("End")  # not a shortcut: nothing happens
            for _ in range(3):
                alice.keyboard.press("ArrowRight")
            cursor = alice.locator(".tile.cursor .label")
            assert cursor.inner_text() == f"16. {WEIRD}"  # shown as text, not as HTML
            alice.keyboard.press("n")
            _settle(alice)
            assert alice.evaluate("window.__pwned") is None
            assert alice_errors == [] and bob_errors == []
        finally:
            browser.close()

    recs = {(r["grader"], r["object_id"]): r for r in project.decision_records(1)}
    assert set(recs) == {
        ("alice", "CL000"),
        ("alice", "CL001"),
        ("alice", "CL002"),
        ("alice", WEIRD),
        ("bob", "CL000"),
        ("bob", "CL001"),
    }
    assert len(project.decision_records(1)) == 6
    assert (recs["alice", "CL000"]["is_lens"], recs["alice", "CL000"]["grade"]) == (True, "A")
    assert recs["alice", "CL001"]["is_lens"] is False
    assert recs["alice", WEIRD]["is_lens"] is False
    assert (recs["bob", "CL001"]["grade"], recs["bob", "CL000"]["is_lens"]) == ("C", False)
    b = recs["alice", "CL002"]
    assert b["grade"] == "B" and len(b["arc_points"]) == 3
    half = SIZE * SCALE / 2
    want = [[(fx - 0.5) * 2 * half, (0.5 - fy) * 2 * half] for fx, fy in clicks]
    np.testing.assert_allclose(b["arc_points"], want, atol=2 * SCALE)  # within 2 pixels
    assert project.grader_position("alice", 1) == WEIRD
    median = statistics.median(turns)
    print(f"\npage turns: n={len(turns)}, median {median:.1f} ms, max {max(turns):.1f} ms")


def test_browser_closed_tab_and_dead_server_lose_nothing(project, tmp_path):
    """A decision made while the server is down waits in the page's outbox (localStorage);
    the tab is closed, a new server starts, the reopened page sends it, exactly once."""
    sync_playwright = _browser_or_skip()
    server = _start(project.path, tmp_path)
    port = server.server_port
    url = f"http://127.0.0.1:{port}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = _context(browser)
            page, errors = _open(browser, url, "alice", context)
            page.keyboard.press("b")  # CL000, saved at once
            _settle(page)
            _stop(server)  # the server dies
            page.keyboard.press("a")  # CL001, cannot be sent now
            page.wait_for_function("window.__clusterlens.pending() >= 1")
            page.wait_for_function(
                "document.getElementById('save').textContent.includes('offline')"
            )
            page.close()  # the tab is closed with the decision unsent
            assert [r["object_id"] for r in project.decision_records(1)] == ["CL000"]
            server = _start(project.path, tmp_path, port)  # a new server, same address
            page, errors2 = _open(browser, url, "alice", context)
            _settle(page)
            assert page.inner_text("#obj-id") == "CL002"  # where she was
            assert "2 / 16 decided" in page.inner_text("#progress")
            assert errors == [] and errors2 == []
        finally:
            browser.close()
            _stop(server)
    recs = project.decision_records(1)
    assert [(r["object_id"], r["grade"]) for r in recs] == [("CL000", "B"), ("CL001", "A")]


def test_browser_with_the_server_down_raises_no_page_error(project, tmp_path):
    """Stepping back to a decided object while the server is down asks for the other
    graders' calls: the failed fetch is shown in the panel, not thrown as a page error."""
    sync_playwright = _browser_or_skip()
    server = _start(project.path, tmp_path)
    url = f"http://127.0.0.1:{server.server_port}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page, errors = _open(browser, url, "alice")
            page.keyboard.press("b")  # CL000, saved
            _settle(page)
            _stop(server)
            page.keyboard.press("ArrowLeft")  # back to CL000, whose others are fetched
            page.wait_for_function(
                "document.getElementById('others').textContent.includes('unreachable')"
            )
            assert page.inner_text("#obj-id") == "CL000"
            assert errors == []
        finally:
            browser.close()
            _stop(server)


def test_the_loop_picks_up_app_decisions(client, project, tmp_path):
    assert _decide(client, grade="A", points=[[3.0, 4.0], [0.0, -5.0]]).status_code == 200
    assert _decide(client, object_id="CL001", is_lens=False).status_code == 200
    row = project.apply(allow_undecided=True)
    assert row["new"] == 1 and project.ids("positive") == ["CL000"]
    table = project.export_catalog(tmp_path / "cat.csv")
    assert list(table["R_EIN"]) == [pytest.approx(5.0)] and list(table["GRADE"]) == ["A"]


# -- issue 15: decisions are never lost or misfiled -------------------------------------------


def test_browser_outbox_keeps_decisions_a_new_token_refuses(project, tmp_path):
    """Grade one, stop the server, grade more while it is down, restart it with another
    token: nothing is dropped and the page never says "all saved" for unsaved decisions; once
    the grader gives the new token, everything is stored, exactly once."""
    sync_playwright = _browser_or_skip()
    first, second = "first-token-123", "second-token-456"
    server = _start(project.path, tmp_path, token=first)
    port = server.server_port
    url = f"http://127.0.0.1:{port}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = _context(browser)
            page = context.new_page()
            page.goto(f"{url}/?token={first}")
            page.goto(f"{url}/grade?grader=alice")
            page.wait_for_function("window.__clusterlens && window.__clusterlens.ready")
            answers = []
            page.on("dialog", lambda d: (answers.append(d.message), d.accept(second)))
            page.keyboard.press("b")  # CL000, saved at once
            _settle(page)
            _stop(server)
            for key in "anann":  # five decisions while the server is down
                page.keyboard.press(key)
            page.wait_for_function("window.__clusterlens.pending() >= 5")
            server = _start(project.path, tmp_path, port, token=second)
            page.wait_for_function("window.__clusterlens.pending() === 0", timeout=30000)
            assert "all saved" in page.inner_text("#save")
            assert any("token" in a for a in answers)  # asked for the new token
        finally:
            browser.close()
            _stop(server)
    ids = sorted(r["object_id"] for r in project.decision_records(1))
    assert ids == IDS[:6]


def test_a_refused_decision_stays_visible(project, tmp_path):
    """Any refusal other than 401 keeps the decision on the page with its reason."""
    sync_playwright = _browser_or_skip()
    server = _start(project.path, tmp_path)
    url = f"http://127.0.0.1:{server.server_port}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page, _ = _open(browser, url, "alice")
            # another program takes the name 'Alice' first: 'alice' is now a near-duplicate
            project.record_decision("CL005", 1, "Alice", is_lens=False)
            page.keyboard.press("a")
            page.wait_for_function("window.__clusterlens.pending() === 0")
            page.wait_for_function(
                "document.getElementById('save').textContent.includes('refused')"
            )
            assert "all saved" not in page.inner_text("#save")
            assert "Alice" in page.inner_text("#message")
        finally:
            browser.close()
            _stop(server)


def test_decisions_are_filed_under_the_iteration_they_were_made_in(project, tmp_path):
    app = create_app(project, FitsDirectoryCutouts(tmp_path / "cutouts"), size=SIZE, crop=CROP)
    client = app.test_client()
    project.record_decision("CL000", 1, "bob", is_lens=True)
    project.apply(allow_undecided=True)
    project.record_iteration("m2", IDS[1:], np.linspace(0.9, 0.5, len(IDS) - 1), TopK(3))
    # a server of iteration 2; a page of iteration 1 sends what it kept in its outbox
    app2 = create_app(
        project, FitsDirectoryCutouts(tmp_path / "cutouts"), size=SIZE, crop=CROP, iteration=2
    )
    c2 = app2.test_client()
    r = _decide(c2, object_id="CL009", iteration=1, is_lens=False)
    assert r.status_code == 200 and r.get_json()["iteration"] == 1
    assert {x["object_id"] for x in project.decision_records(1)} == {"CL000", "CL009"}
    assert project.decision_records(2) == []
    # an object that is not in the named iteration's queue is refused, naming it
    r = _decide(c2, object_id="CL014", iteration=2)
    assert r.status_code == 404 and "iteration 2" in r.get_json()["error"]
    assert _decide(c2, iteration=7).status_code == 409
    assert _decide(c2, iteration="1").status_code == 400
    assert (
        client.post(
            "/api/undo", json={"grader": "alice", "object_id": "CL000", "iteration": 1}
        ).status_code
        == 200
    )


def test_grader_names_are_normalised_and_near_duplicates_refused(client, project):
    assert check_grader_name("\uff21\uff4e\uff4e") == "Ann"  # fullwidth
    assert _decide(client, grader="Ann").status_code == 200
    assert _decide(client, grader="\uff21\uff4e\uff4e", object_id="CL001").status_code == 200
    r = _decide(client, grader="ann", object_id="CL002")
    assert r.status_code == 400 and "'Ann'" in r.get_json()["error"]
    assert {x["grader"] for x in project.decision_records(1)} == {"Ann"}
    with pytest.raises(ParameterError, match="only in case"):
        project.record_decision("CL003", 1, "ANN", is_lens=True)
    with pytest.raises(ParameterError, match="only in case"):
        project.set_grader_position("aNN", 1, "CL003")


def test_only_loopback_hosts_without_a_token(project, tmp_path):
    app = create_app(project, FitsDirectoryCutouts(tmp_path / "cutouts"), size=SIZE, crop=CROP)
    c = app.test_client()
    for host in ("localhost:8765", "127.0.0.1", "127.3.4.5:80", "[::1]:8765"):
        assert c.get("/api/queue?grader=alice", headers={"Host": host}).status_code == 200, host
    for host in ("evil.example", "evil.example:8765", "10.0.0.1", "localhost.evil.example"):
        r = c.get("/api/queue?grader=alice", headers={"Host": host})
        assert r.status_code == 421 and "localhost" in r.get_json()["error"], host
    named = create_app(
        project,
        FitsDirectoryCutouts(tmp_path / "cutouts"),
        size=SIZE,
        crop=CROP,
        allowed_hosts=["lab-box"],
    )
    assert named.test_client().get("/", headers={"Host": "lab-box:8765"}).status_code == 200
    team = create_app(
        project,
        FitsDirectoryCutouts(tmp_path / "cutouts"),
        size=SIZE,
        crop=CROP,
        token="secret-token-1",
    )
    r = team.test_client().get(
        "/api/queue?grader=alice",
        headers={"Host": "lab.example.org", "X-Clusterlens-Token": "secret-token-1"},
    )
    assert r.status_code == 200  # a team server is protected by its token instead


def test_a_deeply_nested_body_is_refused_cleanly(client, project):
    deep = "[" * 30000 + "]" * 30000
    r = client.post("/api/decide", data=deep, content_type="application/json")
    assert r.status_code in (400, 413) and "error" in r.get_json()
    nested = '{"grader": "alice", "object_id": "CL000", "is_lens": true, "points": '
    nested += "[" * 20 + "]" * 20 + "}"
    r = client.post("/api/decide", data=nested, content_type="application/json")
    assert r.status_code == 400 and "deeper" in r.get_json()["error"]
    assert project.decision_records(1) == []


def test_the_server_bounds_idle_connections(project, tmp_path):
    import socket

    from clusterlens.app.server import _bounded_server

    app = create_app(project, FitsDirectoryCutouts(tmp_path / "cutouts"), size=SIZE, crop=CROP)
    server = _bounded_server("127.0.0.1", 0, app, max_connections=2, idle_timeout=0.5)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        idle = [socket.create_connection(("127.0.0.1", server.server_port)) for _ in range(2)]
        # the idle connections are closed by the server after idle_timeout ...
        for s in idle:
            s.settimeout(10)
            assert s.recv(1) == b""
        # ... and a real request is then served
        import urllib.request

        url = f"http://127.0.0.1:{server.server_port}/api/queue?grader=alice"
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.status == 200
    finally:
        server.shutdown()
        server.server_close()


def test_the_app_takes_the_projects_image_geometry(project, tmp_path):
    project.set_image_geometry(SIZE, 20)
    app = create_app(project, FitsDirectoryCutouts(tmp_path / "cutouts"))
    state = app.extensions["clusterlens"]
    assert (state.size, state.crop) == (SIZE, 20)
    assert app.test_client().get("/img/1/0/legacy.png").status_code == 200
    with pytest.raises(ParameterError, match="'crop'.*must not exceed"):
        project.set_image_geometry(10, 20)


def test_an_image_that_cannot_be_rendered_says_why(project, tmp_path):
    sync_playwright = _browser_or_skip()
    from werkzeug.serving import make_server

    app = create_app(project, FitsDirectoryCutouts(tmp_path / "cutouts"), size=SIZE + 8, crop=CROP)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = _context(browser).new_page()
                page.goto(f"http://127.0.0.1:{server.server_port}/grade?grader=alice")
                page.wait_for_function("window.__clusterlens && window.__clusterlens.ready")
                page.wait_for_function(
                    "document.getElementById('message').textContent.includes('No image')"
                )
                assert "CL000" in page.inner_text("#message")
                asked = []
                page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
                page.keyboard.press("a")  # refused at the prompt: nothing is recorded
                page.wait_for_timeout(300)
                assert asked and "Grade it anyway" in asked[0]
                page.once("dialog", lambda d: d.accept())
                page.keyboard.press("a")  # confirmed
                _settle(page)
            finally:
                browser.close()
    finally:
        _stop(server)
    assert [r["object_id"] for r in project.decision_records(1)] == ["CL000"]


# -- undo restores, comments and flags (issue 14) -----------------------------------------------


def test_undo_restores_the_decision_it_replaced(project):
    project.record_decision("CL000", 1, "alice", is_lens=True, grade="A", comment="clear arc")
    project.record_decision("CL000", 1, "alice", is_lens=True, grade="A", comment="clear arc")
    project.record_decision("CL000", 1, "alice", is_lens=False, flags=["artefact"])
    project.record_decision("CL000", 1, "bob", is_lens=True, grade="C")
    restored = project.undo_decision("CL000", 1, "alice")
    assert (restored["is_lens"], restored["grade"], restored["comment"]) == (True, "A", "clear arc")
    (rec,) = project.decision_records(1, grader="alice")
    assert (rec["grade"], rec["comment"], rec["flags"]) == ("A", "clear arc", [])
    # the identical retry was not a replacement: one more undo leaves alice undecided
    assert project.undo_decision("CL000", 1, "alice") is None
    assert project.decision_records(1, grader="alice") == []
    assert project.undo_decision("CL000", 1, "alice") is None  # harmless when repeated
    assert [r["grade"] for r in project.decision_records(1)] == ["C"]  # bob's untouched
    # delete_decision forgets the history too: nothing comes back after it
    project.record_decision("CL001", 1, "alice", is_lens=True)
    project.record_decision("CL001", 1, "alice", is_lens=False)
    assert project.delete_decision("CL001", 1, "alice") is True
    project.record_decision("CL001", 1, "alice", is_lens=True, grade="B")
    assert project.undo_decision("CL001", 1, "alice") is None


def test_comment_and_flags_are_stored_checked_and_exported(project, tmp_path):
    project.record_decision(
        "CL000",
        1,
        "alice",
        is_lens=False,
        comment="  diffraction spike ",
        flags=["interesting-non-lens", "artefact", "artefact"],
    )
    (rec,) = project.decision_records(1)
    assert rec["comment"] == "diffraction spike"
    assert rec["flags"] == ["artefact", "interesting-non-lens"]  # fixed order, no repeats
    t = project.decisions()
    assert list(t["comment"]) == ["diffraction spike"]
    assert list(t["flags"]) == ["artefact,interesting-non-lens"]
    with pytest.raises(ParameterError, match="flags"):
        project.record_decision("CL001", 1, "alice", is_lens=True, flags=["pretty"])
    with pytest.raises(ParameterError, match="500"):
        project.record_decision("CL001", 1, "alice", is_lens=True, comment="x" * 501)
    csv = tmp_path / "d.csv"
    csv.write_text(
        "object_id,iteration,grader,is_lens,grade,comment,flags\n"
        'CL002,1,carol,1,B,"arc, faint",ambiguous;needs-deeper-data\n'
    )
    assert project.import_decisions_csv(csv) == 1
    (rec,) = project.decision_records(1, grader="carol")
    assert rec["comment"] == "arc, faint" and rec["flags"] == ["ambiguous", "needs-deeper-data"]
    csv.write_text("object_id,iteration,grader,is_lens,flags\nCL003,1,carol,1,shiny\n")
    with pytest.raises(ParameterError, match="line 2"):
        project.import_decisions_csv(csv)


def test_v3_projects_migrate_keeping_their_decisions(tmp_path):
    old = tmp_path / "v3.sqlite"
    con = sqlite3.connect(old)
    for v in (1, 2, 3):
        con.executescript(MIGRATIONS[v])
    con.execute(
        "INSERT INTO iterations (number, state, strategy, threshold, n_scored, "
        "n_selected, created_at) VALUES (1, 'open', 'topk', 0.5, 1, 1, 0)"
    )
    con.execute("INSERT INTO objects (id) VALUES ('CL9')")
    con.execute("INSERT INTO selections VALUES (1, 'CL9', 0)")
    con.execute(
        "INSERT INTO decisions (object_id, iteration, grader, is_lens, grade, "
        "decided_at) VALUES ('CL9', 1, 'ann', 1, 'B', 5.0)"
    )
    con.execute("PRAGMA user_version=3")
    con.commit()
    con.close()
    p = SearchProject(old)
    assert p.schema_version == SCHEMA_VERSION == 4
    (rec,) = p.decision_records(1)
    assert (rec["grade"], rec["comment"], rec["flags"]) == ("B", "", [])
    p.record_decision("CL9", 1, "ann", is_lens=False)
    assert p.undo_decision("CL9", 1, "ann")["grade"] == "B"


def test_api_comment_flags_and_undo_restores(client, project):
    r = _decide(client, grade="B", comment="two arcs", flags=["ambiguous"])
    assert r.status_code == 200
    assert _decide(client, is_lens=False).status_code == 200
    q = client.get("/api/queue?grader=alice").json
    assert q["mine"]["CL000"]["is_lens"] is False and q["mine"]["CL000"]["comment"] == ""
    r = client.post("/api/undo", json={"grader": "alice", "object_id": "CL000"})
    assert r.status_code == 200 and r.json["removed"] is True
    assert r.json["restored"]["grade"] == "B" and r.json["restored"]["flags"] == ["ambiguous"]
    q = client.get("/api/queue?grader=alice").json
    assert q["mine"]["CL000"]["comment"] == "two arcs"
    before = _snapshot(project)
    for bad in (
        {"flags": ["pretty"]},
        {"flags": "ambiguous"},
        {"comment": 5},
        {"comment": "x" * 501},
    ):
        assert _decide(client, **bad).status_code == 400, bad
    assert _snapshot(project) == before


def test_browser_comment_flags_and_undo_restore(project, live):
    sync_playwright = _browser_or_skip()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page, errors = _open(browser, live, "alice")
            page.fill("#comment", "faint counter-arc")
            page.locator("#flags input[value='needs-deeper-data']").check()
            page.keyboard.press("b")  # CL000: lens B, with the comment and the flag
            assert page.inner_text("#obj-id") == "CL001"
            assert page.input_value("#comment") == ""  # a fresh object, a fresh note
            page.keyboard.press("ArrowLeft")  # CL000 again: its note is shown back
            assert page.input_value("#comment") == "faint counter-arc"
            page.fill("#comment", "")
            page.keyboard.press("Escape")  # leave the box: the keys grade again
            page.keyboard.press("n")  # now not a lens, without the comment
            _settle(page)
            page.keyboard.press("u")  # undo: back to lens B with its note
            _settle(page)
            page.wait_for_function("document.getElementById('mine').innerText.includes('grade B')")
            assert page.inner_text("#obj-id") == "CL000"
            assert page.input_value("#comment") == "faint counter-arc"
            assert page.locator("#flags input[value='needs-deeper-data']").is_checked()
            assert errors == []
        finally:
            browser.close()
    (rec,) = project.decision_records(1, grader="alice")
    assert (rec["grade"], rec["comment"], rec["flags"]) == (
        "B",
        "faint counter-arc",
        ["needs-deeper-data"],
    )


def test_browser_scale_bar_compass_and_legacy_link(project, live):
    sync_playwright = _browser_or_skip()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page, errors = _open(browser, live, "alice")
            field = SIZE * SCALE  # 16.8 arcsec: the longest bar within a quarter is 2"
            for zoom_key, want in (("", 2), ("+", 2), ("+", 2), ("+", 1)):
                if zoom_key:
                    page.keyboard.press(zoom_key)
                zoom = float(page.inner_text("#zoom-name").split("×")[1])
                arcsec = float(page.get_attribute("#scalebar", "data-arcsec"))
                assert arcsec == want and page.inner_text("#scalebar-label") == f"{want}″"
                bar = page.locator("#scalebar-bar").bounding_box()["width"]
                frame = page.locator("#frame").bounding_box()["width"]
                assert bar == pytest.approx(arcsec / field * zoom * frame, abs=1.5)
            assert page.locator("#compass").get_attribute("aria-label") == "north up, east left"
            first = project.inspection_queue(1)[0]
            href = page.get_attribute("#legacy", "href")
            assert href == (
                f"https://www.legacysurvey.org/viewer?ra={first['ra']:.5f}&dec={first['dec']:.5f}"
                "&layer=ls-dr10&zoom=16"
            )
            assert page.get_attribute("#legacy", "rel") == "noopener noreferrer"
            page.keyboard.press("s")
            assert f"ra={project.inspection_queue(1)[1]['ra']:.5f}" in page.get_attribute(
                "#legacy", "href"
            )
            assert errors == []
        finally:
            browser.close()


def test_browser_brightness_and_contrast_are_remembered_per_grader(project, live):
    sync_playwright = _browser_or_skip()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = _context(browser)
            alice, errors = _open(browser, live, "alice", context)
            filt = "getComputedStyle(document.getElementById('cutout')).filter"
            assert alice.evaluate(filt) == "none"  # no filter at all while untouched
            alice.fill("#brightness", "1.5")
            alice.fill("#contrast", "0.8")
            assert alice.evaluate(filt) == "brightness(1.5) contrast(0.8)"
            alice.keyboard.press("Escape")
            alice.reload()
            alice.wait_for_function("window.__clusterlens.ready")
            assert alice.evaluate(filt) == "brightness(1.5) contrast(0.8)"
            assert alice.input_value("#brightness") == "1.5"
            bob, bob_errors = _open(browser, live, "bob", context)  # same browser, own setting
            assert bob.evaluate(filt) == "none"
            alice.click("#tone-reset")
            alice.reload()
            alice.wait_for_function("window.__clusterlens.ready")
            assert alice.evaluate(filt) == "none"
            assert errors == [] and bob_errors == []
        finally:
            browser.close()


def test_grading_guide_examples(client, project):
    cfg = lambda: json.loads(  # noqa: E731
        client.get("/grade?grader=alice").data.split(b'id="config">')[1].split(b"</script>")[0]
    )
    assert cfg()["guide_examples"] == {"A": [], "B": [], "C": []}
    page = client.get("/grade?grader=alice").data
    assert b"definite" in page and b"probable" in page and b"possible" in page
    project.record_decision("CL001", 1, "alice", is_lens=True, grade="A")
    project.record_decision("CL001", 1, "bob", is_lens=True, grade="A")
    project.record_decision("CL001", 1, "carol", is_lens=True, grade="B")
    project.record_decision("CL002", 1, "alice", is_lens=True, grade="B")
    project.record_decision("CL002", 1, "bob", is_lens=True, grade="C")  # a tie: no example
    project.record_decision("CL003", 1, "bob", is_lens=True, grade="C")
    project.record_decision("CL004", 1, "bob", is_lens=False)
    assert cfg()["guide_examples"] == {"A": [1], "B": [], "C": [3]}


def test_browser_grading_guide(project, live):
    sync_playwright = _browser_or_skip()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page, errors = _open(browser, live, "alice")
            page.click("#guide summary")  # the guide fills on its (asynchronous) toggle event
            page.wait_for_function(
                "document.getElementById('guide-examples').textContent.includes('No graded')"
            )
            project.record_decision("CL001", 1, "bob", is_lens=True, grade="A")
            project.record_decision("CL003", 1, "bob", is_lens=True, grade="C")
            page.reload()
            page.wait_for_function("window.__clusterlens.ready")
            assert page.locator("#guide-examples img").count() == 0  # nothing until opened
            page.click("#guide summary")
            page.wait_for_function("document.querySelectorAll('#guide-examples img').length >= 2")
            imgs = page.locator("#guide-examples img")
            assert imgs.count() == 2
            assert imgs.nth(0).get_attribute("alt") == "grade A example: CL001"
            page.wait_for_function(
                "[...document.querySelectorAll('#guide-examples img')]"
                ".every((i) => i.complete && i.naturalWidth > 0)"
            )
            assert errors == []
        finally:
            browser.close()
