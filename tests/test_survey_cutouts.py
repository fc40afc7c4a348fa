"""Cutout sources against a local HTTP server that misbehaves on request.

The server (standard library, 127.0.0.1, ephemeral port) speaks the Legacy Surveys viewer's
``/viewer/fits-cutout`` protocol. Each RA can be given a plan: a list of behaviours used by
its successive requests ("ok", "500", "404", "slow", "drop", "truncate", "truncate_nolength",
"html", "nan", "allnan", "missing_band", "zero_band", "wrong_size", "delay"), after which
it answers "ok".
"""

import email.utils
import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from clusterlens.cli import main
from clusterlens.errors import ParameterError
from clusterlens.survey import (
    CutoutError,
    FitsDirectoryCutouts,
    LegacySurveyCutouts,
    fetch_cutouts,
    read_cutout_fits,
    validate_cutout,
    write_cutout_fits,
)

SIZE = 24
SLOW = 1.0  # seconds a "slow" answer waits: well above the client's test timeout


def cutout_pixels(ra, dec, size, nbands=3):
    """Deterministic test image: a Gaussian blob whose brightness encodes the position."""
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    blob = np.exp(-(xx**2 + yy**2) / 8.0)
    amp = 1.0 + (ra % 7) + 0.1 * (dec % 3)
    return np.stack([(b + 1) * amp * blob + 0.01 for b in range(nbands)]).astype(np.float32)


def cutout_bytes(ra, dec, size, bands, kind="ok"):
    nb = len(bands) - (kind == "missing_band")
    side = size - 2 if kind == "wrong_size" else size
    data = cutout_pixels(ra, dec, side, nb)
    if kind == "nan":
        data[1, :2, :3] = np.nan
    elif kind == "allnan":
        data[2] = np.nan
    elif kind == "zero_band":
        data[2] = 0.0
    h = fits.Header()
    for i, b in enumerate(bands[:nb]):
        h[f"BAND{i}"] = b
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN", "DEC--TAN"
    h["CRVAL1"], h["CRVAL2"] = ra, dec
    h["CRPIX1"] = h["CRPIX2"] = (side + 1) / 2
    h["CD1_1"], h["CD2_2"] = -0.262 / 3600, 0.262 / 3600
    buf = io.BytesIO()
    fits.PrimaryHDU(data, header=h).writeto(buf)
    return buf.getvalue()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep the test output clean
        pass

    def do_GET(self):
        srv = self.server
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        ra = float(q.get("ra", "nan"))
        with srv.lock:
            srv.requests.append(q)
            plan = srv.plans.get(round(ra, 6), [])
            kind = plan.pop(0) if plan else "ok"
            srv.in_flight += 1
            srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
        # Counted only before the answer is sent, so the count never exceeds the requests
        # the client holds open at once (it cannot release a slot before the answer).
        if kind == "delay":
            time.sleep(0.05)
        with srv.lock:
            srv.in_flight -= 1
        self._answer(url, q, kind)

    def _answer(self, url, q, kind):
        if url.path != "/viewer/fits-cutout":
            kind = "404"
        if kind == "slow":
            time.sleep(SLOW)
        if kind in ("500", "404", "429"):
            body = b"<html><body>error</body></html>"
            self.send_response(int(kind))
            self.send_header("Content-Type", "text/html")
            if kind == "429":
                self.send_header("Retry-After", "0")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if kind == "drop":
            self.close_connection = True
            return  # no answer at all: the client sees the connection close
        if kind == "html":
            body = b"<!DOCTYPE html><html><head><title>No coverage here</title></head></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        body = cutout_bytes(float(q["ra"]), float(q["dec"]), int(q["size"]), q["bands"], kind)
        self.send_response(200)
        self.send_header("Content-Type", "image/fits")
        if kind != "truncate_nolength":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if kind == "trickle":  # each piece in time, the whole too slow
            for k in range(0, len(body), len(body) // 8 + 1):
                self.wfile.write(body[k : k + len(body) // 8 + 1])
                self.wfile.flush()
                time.sleep(0.06)
            return
        if kind.startswith("truncate"):
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # broken pipes after client timeouts
        pass


@pytest.fixture
def server():
    srv = Server(("127.0.0.1", 0), Handler)
    srv.lock = threading.Lock()
    srv.requests, srv.plans = [], {}
    srv.in_flight = srv.max_in_flight = 0
    srv.base_url = f"http://127.0.0.1:{srv.server_address[1]}/viewer"
    thread = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def client(server, tmp_path, **kw):
    opts = {"cache_dir": tmp_path / "cache", "timeout": 0.3, "retries": 2, "backoff": 0.01}
    opts.update(kw)
    return LegacySurveyCutouts(server.base_url, **opts)


def cache_files(tmp_path):
    return sorted(p for p in (tmp_path / "cache").rglob("*") if p.is_file())


def test_get_returns_validated_cutout_and_caches_it(server, tmp_path):
    src = client(server, tmp_path)
    image, header = src.get(150.0, 2.5, SIZE, "grz")
    assert image.dtype == np.float32 and image.shape == (3, SIZE, SIZE)
    np.testing.assert_array_equal(image, cutout_pixels(150.0, 2.5, SIZE))
    assert header["BANDS"] == "grz" and header["CLNBAD"] == 0 and header["LAYER"] == "ls-dr9"
    assert header["CLZEROFR"] == 0.0
    q = server.requests[0]
    assert q == {"ra": "150.0000000", "dec": "2.5000000", "layer": "ls-dr9",
                 "pixscale": "0.262", "bands": "grz", "size": str(SIZE)}  # fmt: skip
    assert len(cache_files(tmp_path)) == 1
    # A second object with the same cache answers without the network...
    again, _ = client(server, tmp_path).get(150.0, 2.5, SIZE, "grz")
    np.testing.assert_array_equal(again, image)
    assert len(server.requests) == 1
    # ...and every request parameter is part of the key.
    client(server, tmp_path, layer="ls-dr10").get(150.0, 2.5, SIZE, "grz")
    client(server, tmp_path).get(150.0, 2.5, SIZE + 2, "grz")
    assert len(server.requests) == 3 and len(cache_files(tmp_path)) == 3


@pytest.mark.parametrize(
    "plan", [["500", "500"], ["429"], ["drop"], ["truncate"], ["truncate_nolength"], ["slow"]]
)
def test_retries_transient_failures_and_caches_only_whole_files(server, tmp_path, plan):
    server.plans[10.0] = list(plan)
    image, _ = client(server, tmp_path).get(10.0, 0.0, SIZE)
    np.testing.assert_array_equal(image, cutout_pixels(10.0, 0.0, SIZE))
    assert len(server.requests) == len(plan) + 1
    (cached,) = cache_files(tmp_path)  # one whole file, no temporaries
    assert cached.suffix == ".fits" and cached.stat().st_size % 2880 == 0
    fits.open(cached).close()


@pytest.mark.parametrize("kind", ["500", "truncate", "drop"])
def test_gives_up_after_the_last_retry_and_caches_nothing(server, tmp_path, kind):
    server.plans[11.0] = [kind] * 5
    with pytest.raises(CutoutError, match="after 3 attempt"):
        client(server, tmp_path).get(11.0, 0.0, SIZE)
    assert len(server.requests) == 3
    assert cache_files(tmp_path) == []


def test_html_page_and_404_fail_at_once(server, tmp_path):
    server.plans[12.0] = ["html"]
    with pytest.raises(CutoutError, match="HTML.*No coverage here"):
        client(server, tmp_path).get(12.0, 0.0, SIZE)
    server.plans[13.0] = ["404"]
    with pytest.raises(CutoutError, match="HTTP 404"):
        client(server, tmp_path).get(13.0, 0.0, SIZE)
    assert len(server.requests) == 2 and cache_files(tmp_path) == []


def test_damaged_cache_file_is_fetched_again(server, tmp_path):
    src = client(server, tmp_path)
    src.get(14.0, 1.0, SIZE)
    path = src.cache_path(14.0, 1.0, SIZE)
    path.write_bytes(path.read_bytes()[:3000])
    image, _ = src.get(14.0, 1.0, SIZE)
    assert len(server.requests) == 2 and np.isfinite(image).all()


def test_partly_nan_cutout_is_repaired_and_flagged(server, tmp_path):
    server.plans[15.0] = ["nan"]
    image, header = client(server, tmp_path).get(15.0, 0.0, SIZE)
    assert np.isfinite(image).all() and header["CLNBAD"] == 6
    assert (image[1, :2, :3] == 0).all()
    server.plans[16.0] = ["nan"]
    with pytest.raises(CutoutError, match="6 NaN/inf"):
        client(server, tmp_path, nan_policy="raise").get(16.0, 0.0, SIZE)


def test_a_trickling_transfer_is_cut_off_and_retried(server, tmp_path):
    server.plans[18.0] = ["trickle"]
    src = client(server, tmp_path, max_transfer_time=0.2)
    image, _ = src.get(18.0, 0.0, SIZE)
    np.testing.assert_array_equal(image, cutout_pixels(18.0, 0.0, SIZE))
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("allnan", "Band z .* no finite pixel"),
        ("zero_band", "Band z .* zero everywhere"),
        ("missing_band", "2 band plane.*missing"),
        ("wrong_size", "expected 24 x 24"),
    ],
)
def test_unusable_cutouts_raise(server, tmp_path, kind, message):
    server.plans[17.0] = [kind]
    with pytest.raises(CutoutError, match=message):
        client(server, tmp_path).get(17.0, 0.0, SIZE)


def test_concurrency_is_bounded(server, tmp_path):
    src = client(server, tmp_path, max_concurrent=2, timeout=2.0)
    ras = [20.0 + i for i in range(8)]
    for ra in ras:
        server.plans[ra] = ["delay"]
    threads = [threading.Thread(target=src.get, args=(ra, 0.0, SIZE)) for ra in ras]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(server.requests) == 8
    assert 1 <= server.max_in_flight <= 2


def test_bad_parameters_are_named(tmp_path):
    with pytest.raises(ParameterError, match="'base_url' parameter"):
        LegacySurveyCutouts("ftp://example.org")
    with pytest.raises(ParameterError, match="'layer' parameter.*ls-dr8"):
        LegacySurveyCutouts(layer="dr9")
    src = LegacySurveyCutouts(layer="my-layer", check_layer=False)
    with pytest.raises(ParameterError, match="'size' parameter"):
        src.get(1.0, 2.0, 0)
    with pytest.raises(ParameterError, match="'bands' parameter"):
        src.get(1.0, 2.0, 10, "gg")
    with pytest.raises(ParameterError, match="'dec' parameter"):
        src.get(1.0, 95.0, 10)
    with pytest.raises(ParameterError, match="'retries' parameter"):
        LegacySurveyCutouts(retries=-1)
    with pytest.raises(ParameterError, match="'nan_policy'"):
        validate_cutout(np.ones((3, 4, 4)), fits.Header(), size=4, bands="grz", nan_policy="x")


def test_band_labels_must_agree():
    h = fits.Header({"BAND0": "g", "BAND1": "z", "BAND2": "r"})
    with pytest.raises(CutoutError, match="Plane 1 .* band 'z'"):
        validate_cutout(np.ones((3, 4, 4)), h, size=4, bands="grz")
    with pytest.raises(CutoutError, match="holds bands 'gzr'"):
        validate_cutout(np.ones((3, 4, 4)), fits.Header({"BANDS": "gzr"}), size=4, bands="grz")


def test_zero_pixels_are_counted_and_repairs_are_not():
    data = np.ones((3, 4, 4))
    data[:, 0, :] = 0.0  # a strip without data
    data[1, 2, 2] = np.nan
    image, header, bad = validate_cutout(data, fits.Header(), size=4, bands="grz")
    assert header["CLZEROFR"] == pytest.approx(0.25) and header["CLNBAD"] == 1
    assert bad.sum() == 1 and bad[1, 2, 2] and image[1, 2, 2] == 0


def test_fits_directory_by_id_by_position_and_cropped(tmp_path):
    data = cutout_pixels(30.0, -5.0, 20)
    header = fits.Header({"CRVAL1": 30.0, "CRVAL2": -5.0, "CRPIX1": 10.5, "CRPIX2": 10.5})
    header["BANDS"] = "grz"
    write_cutout_fits(tmp_path / "77.fits", data, header)
    src = FitsDirectoryCutouts(tmp_path)
    full, _ = src.get(30.0, -5.0, 20, cluster_id=77)
    np.testing.assert_array_equal(full, data)
    crop, h = src.get(30.0 + 0.1 / 3600, -5.0, 10)
    np.testing.assert_array_equal(crop, data[:, 5:15, 5:15])
    assert h["CRPIX1"] == 5.5
    rz, _ = src.get(30.0, -5.0, 20, "zg", cluster_id=77)
    np.testing.assert_array_equal(rz, data[[2, 0]])
    zrg, h = src.get(30.0, -5.0, 20, "zrg", cluster_id=77)
    np.testing.assert_array_equal(zrg, data[::-1])
    assert h["BANDS"] == "zrg"
    with pytest.raises(CutoutError, match="No cutout file .* within 1 arcsec"):
        src.get(31.0, -5.0, 10)
    with pytest.raises(CutoutError, match="No cutout file"):
        src.get(30.0, -5.0, 10, cluster_id=78)
    with pytest.raises(CutoutError, match="expected 30 x 30"):
        src.get(30.0, -5.0, 30, cluster_id=77)
    with pytest.raises(ParameterError, match="existing folder"):
        FitsDirectoryCutouts(tmp_path / "none")


def catalog(ras):
    return Table(
        {"cluster_id": [100 + i for i in range(len(ras))], "ra": ras, "dec": [1.0] * len(ras)}
    )


def test_bulk_fetch_is_resumable_and_reports_failures(server, tmp_path):
    ras = [40.0, 41.0, 42.0, 43.0, 44.0]
    server.plans[41.0] = ["html"]
    server.plans[43.0] = ["500"] * 3
    out = tmp_path / "cutouts"
    src = client(server, tmp_path)
    summary = fetch_cutouts(catalog(ras), src, out, size=SIZE, progress=False)
    assert sorted(summary.fetched) == ["100", "102", "104"] and not summary.ok
    assert list(summary.failures["cluster_id"]) == ["101", "103"]
    assert "HTML" in summary.failures["reason"][0] and "HTTP 500" in summary.failures["reason"][1]
    assert "101: " in summary.report()
    assert len(Table.read(out / "failures.ecsv")) == 2
    assert sorted(p.name for p in out.iterdir()) == [
        "100.fits", "102.fits", "104.fits", "failures.ecsv"
    ]  # fmt: skip
    # Resume: finished files are skipped, the failures are tried again (and now succeed).
    (out / "104.fits").write_bytes(b"SIMPLE  = T broken")  # a damaged file is redone
    n = len(server.requests)
    again = fetch_cutouts(catalog(ras), client(server, tmp_path, cache_dir=None), out,
                          size=SIZE, progress=False)  # fmt: skip
    assert sorted(again.skipped) == ["100", "102"] and sorted(again.fetched) == [
        "101",
        "103",
        "104",
    ]
    assert again.ok and not (out / "failures.ecsv").exists()
    assert len(server.requests) == n + 3
    # The folder is a cutout source of its own, and gives back what the service gave.
    local = FitsDirectoryCutouts(out)
    for i, ra in enumerate(ras):
        img, h = local.get(ra, 1.0, SIZE, cluster_id=100 + i)
        np.testing.assert_array_equal(img, cutout_pixels(ra, 1.0, SIZE))
        assert h["CLUSTID"] == str(100 + i)
    data, _ = read_cutout_fits(out / "100.fits")
    assert data.shape == (3, SIZE, SIZE)


def test_bulk_fetch_rejects_bad_catalogs(server, tmp_path):
    src = client(server, tmp_path)
    with pytest.raises(ParameterError, match="'source' parameter"):
        fetch_cutouts(catalog([1.0]), object(), tmp_path, size=SIZE)
    bad = catalog([1.0, 2.0])
    bad["cluster_id"] = ["a/b", "c"]
    with pytest.raises(Exception, match="unfit for file names"):
        fetch_cutouts(bad, src, tmp_path, size=SIZE)
    dup = catalog([1.0, 2.0])
    dup["cluster_id"] = [5, 5]
    with pytest.raises(Exception, match="more than once"):
        fetch_cutouts(dup, src, tmp_path, size=SIZE)


def test_cli_fetch_end_to_end(server, tmp_path, capsys):
    cat = Table({"CLUSTER_ID": [7, 8], "RA_BCG": [50.0, 51.0], "DEC_BCG": [3.0, 4.0]})
    cat.write(tmp_path / "cat.csv")
    out = tmp_path / "out"
    args = ["fetch", "--catalog", str(tmp_path / "cat.csv"), "--out", str(out),
            "--base-url", server.base_url, "--size", str(SIZE), "--timeout", "0.3",
            "--retries", "1", "--backoff", "0.01", "--no-progress",
            "--cache", str(tmp_path / "cache")]  # fmt: skip
    assert main(args) == 0
    assert "2 fetched, 0 already present, 0 failed" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["7.fits", "8.fits"]
    assert main(args) == 0
    assert "0 fetched, 2 already present" in capsys.readouterr().out
    server.plans[52.0] = ["500"] * 2
    Table({"CLUSTER_ID": [9], "RA_BCG": [52.0], "DEC_BCG": [0.0]}).write(tmp_path / "c2.ecsv")
    args[2] = str(tmp_path / "c2.ecsv")
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "9: Gave up" in captured.out and "failures.ecsv" in captured.err
    assert main(args[:2] + [str(tmp_path / "none.csv")] + args[3:]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(args + ["--layer", "dr42"]) == 2
    assert "'layer' parameter" in capsys.readouterr().err
    assert main(args + ["--ra-column", "RAJ2000"]) == 2
    assert "--ra-column 'RAJ2000' is not a column" in capsys.readouterr().err


# -- issue 15: a bad answer is never cached ---------------------------------------------------


@pytest.mark.parametrize("kind", ["wrong_size", "missing_band", "allnan", "zero_band"])
def test_a_wrong_answer_is_not_cached_and_a_later_run_fetches_again(server, tmp_path, kind):
    server.plans[18.0] = [kind]
    with pytest.raises(CutoutError):
        client(server, tmp_path).get(18.0, 0.0, SIZE)
    assert cache_files(tmp_path) == []  # checked before caching
    image, _ = client(server, tmp_path).get(18.0, 0.0, SIZE)  # the server answers well now
    assert image.shape == (3, SIZE, SIZE) and len(cache_files(tmp_path)) == 1


def test_a_wrong_file_already_in_the_cache_is_replaced(server, tmp_path):
    src = client(server, tmp_path)
    path = src.cache_path(19.0, 0.0, SIZE)
    path.parent.mkdir(parents=True)
    path.write_bytes(cutout_bytes(19.0, 0.0, SIZE, "grz", "wrong_size"))  # an old bad answer
    image, _ = src.get(19.0, 0.0, SIZE)
    assert image.shape == (3, SIZE, SIZE) and len(server.requests) == 1


def test_overwrite_fetches_anew_and_stray_parts_go(server, tmp_path):
    import os

    from clusterlens.survey.fetch import STRAY_PART_AGE

    src = client(server, tmp_path)
    out = tmp_path / "out"
    fetch_cutouts(catalog([20.0]), src, out, size=SIZE, progress=False)
    assert len(server.requests) == 1
    stale, fresh = out / ".c0.fits.abc.part", out / ".c1.fits.def.part"
    for p in (stale, fresh):
        p.write_bytes(b"half")
    old = time.time() - STRAY_PART_AGE - 5
    os.utime(stale, (old, old))
    summary = fetch_cutouts(catalog([20.0]), src, out, size=SIZE, progress=False, overwrite=True)
    assert len(summary.fetched) == 1 and len(server.requests) == 2  # not from the cache
    assert not stale.exists() and fresh.exists()  # a live write's file is left alone


def test_retry_after_as_an_http_date():
    from clusterlens.survey.legacy import _retry_after

    now = 1_800_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert _retry_after({"Retry-After": date}, now=now) == pytest.approx(30.0)
    assert _retry_after({"Retry-After": "7"}, now=now) == 7.0
    assert _retry_after({"Retry-After": "soon"}, now=now) is None
    assert _retry_after({"Retry-After": email.utils.formatdate(now - 9, usegmt=True)}, now=now) == 0


def test_cli_fetch_timing_options_and_workers(server, tmp_path, capsys):
    Table({"CLUSTER_ID": [1], "RA_BCG": [21.0], "DEC_BCG": [0.0]}).write(tmp_path / "c.csv")
    base = ["fetch", "--catalog", str(tmp_path / "c.csv"), "--out", str(tmp_path / "o"),
            "--base-url", server.base_url, "--size", str(SIZE), "--no-progress"]  # fmt: skip
    assert main(base + ["--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert "--workers" in err and "max_concurrent" not in err
    assert main(base + ["--max-transfer-time", "5", "--max-backoff", "1"]) == 0


def test_written_cutouts_carry_a_full_wcs_and_their_unit(tmp_path):
    from astropy.wcs import WCS

    from clusterlens.survey import write_cutout_fits

    image = np.zeros((3, 41, 41), dtype=np.float32)
    header = fits.Header({"CRVAL1": 150.1, "CRVAL2": 2.2, "BANDS": "grz"})  # as the demo has
    path = write_cutout_fits(tmp_path / "c.fits", image, header)
    with fits.open(path) as hdul:
        h = hdul[0].header
    assert h["BUNIT"] == "nanomaggy" and h["CTYPE1"] == "RA---TAN"
    wcs = WCS(h, naxis=2)
    centre = wcs.pixel_to_world(20, 20)  # 0-based centre pixel
    assert centre.ra.deg == pytest.approx(150.1) and centre.dec.deg == pytest.approx(2.2)
    east = wcs.pixel_to_world(19, 20)  # one pixel to the left is east
    sep = centre.separation(east).arcsec
    assert sep == pytest.approx(0.262, rel=1e-6) and east.ra.deg > centre.ra.deg
    # a header with its own WCS keeps it
    own = fits.Header({"CRVAL1": 1.0, "CRVAL2": 2.0, "CDELT1": -1e-4, "CDELT2": 1e-4})
    with fits.open(write_cutout_fits(tmp_path / "d.fits", image, own)) as hdul:
        assert "CD1_1" not in hdul[0].header and hdul[0].header["CDELT2"] == 1e-4
