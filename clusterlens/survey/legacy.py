"""The DESI Legacy Imaging Surveys viewer's FITS cutout service.

A request is ``{base_url}/fits-cutout?ra=..&dec=..&layer=..&pixscale=..&bands=..&size=..``
(``base_url`` defaults to ``https://www.legacysurvey.org/viewer``). The answer is a FITS
file whose primary HDU holds a ``(band, y, x)`` image in nanomaggies with a TAN WCS, north
up and east left.

Network behaviour, all standard library (``urllib``):

* at most ``max_concurrent`` requests in flight per :class:`LegacySurveyCutouts` object,
  whatever the number of threads calling it;
* every request has a ``timeout`` [s] for connecting and for each read, and
  ``max_transfer_time`` [s] for the whole body;
* HTTP 5xx, 429, timeouts, refused or dropped connections and short transfers are retried
  up to ``retries`` times, waiting ``backoff * 2**attempt`` seconds (stretched by up to 25%
  by a jitter derived from the URL, at least the server's ``Retry-After``, at most
  ``max_backoff``) in between; other 4xx answers and HTML pages fail at once;
* with a ``cache_dir``, the raw FITS bytes are cached under a SHA-256 key of every request
  parameter (base URL, layer, pixel scale, bands, size, RA, Dec). A file enters the cache
  only after the whole body arrived, parsed as FITS and passed the cutout checks (size,
  bands, bad pixels), written to a temporary name in the cache folder and then renamed, so
  a crash, a broken transfer or a wrong answer never leaves a bad file that later reads as
  good. A cache file that fails those checks is deleted and fetched again, and
  :meth:`LegacySurveyCutouts.invalidate` (``fetch --overwrite``) drops one on purpose.
"""

from __future__ import annotations

import datetime
import email.utils
import hashlib
import http.client
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from clusterlens import __version__
from clusterlens._io import atomic_write_bytes
from clusterlens._validation import check_int, check_scalar
from clusterlens.errors import ParameterError
from clusterlens.survey.cutouts import (
    PIXEL_SCALE,
    CutoutError,
    CutoutSource,
    IncompleteFitsError,
    check_bands,
    check_size,
    parse_fits_bytes,
    validate_cutout,
)

__all__ = ["LegacySurveyCutouts", "LAYERS", "DEFAULT_BASE_URL"]

#: The public viewer.
DEFAULT_BASE_URL = "https://www.legacysurvey.org/viewer"
#: Layers known to serve g, r, z cutouts (others are accepted with ``check_layer=False``).
LAYERS = (
    "ls-dr8",
    "ls-dr8-north",
    "ls-dr8-south",
    "ls-dr9",
    "ls-dr9-north",
    "ls-dr9-south",
    "ls-dr10",
)


class _RetryableError(Exception):
    """A failure worth another try (5xx, 429, timeout, dropped or short transfer)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def _retry_after(headers, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number of seconds, or an HTTP date
    (RFC 9110, e.g. ``Wed, 21 Oct 2026 07:28:00 GMT``) counted from ``now``."""
    value = ((headers or {}).get("Retry-After") or "").strip()
    if value.isdigit():
        return float(value)
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class LegacySurveyCutouts(CutoutSource):
    """FITS cutouts from the Legacy Surveys viewer (or a server that speaks its protocol).

    Parameters
    ----------
    base_url : str
        Service root; requests go to ``{base_url}/fits-cutout``. Point it at a mirror or a
        local test server.
    layer : str
        Imaging layer, e.g. ``"ls-dr8"`` (the paper's data), ``"ls-dr9"``, ``"ls-dr10"``.
    pixel_scale : float
        [arcsec / pixel]; the survey's native 0.262 by default.
    cache_dir : str or path-like, optional
        Folder of the on-disk cache; ``None`` disables caching.
    timeout : float
        Seconds allowed to connect and for each read.
    max_transfer_time : float
        Seconds allowed for a whole body to arrive (a retryable failure beyond).
    retries : int
        Extra attempts after a retryable failure.
    backoff, max_backoff : float
        Wait about ``backoff * 2**attempt`` seconds (see the module docstring), never more
        than ``max_backoff``, before retry ``attempt + 1``.
    max_concurrent : int
        Requests in flight at once through this object.
    nan_policy, max_bad_fraction
        See :func:`~clusterlens.survey.validate_cutout`.
    check_layer : bool
        Reject layers not in :data:`LAYERS` (catches typos before any request).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        layer: str = "ls-dr9",
        pixel_scale: float = PIXEL_SCALE,
        cache_dir=None,
        timeout: float = 60.0,
        retries: int = 4,
        backoff: float = 2.0,
        max_backoff: float = 60.0,
        max_concurrent: int = 4,
        max_transfer_time: float = 600.0,
        nan_policy: str = "fill",
        max_bad_fraction: float = 0.25,
        check_layer: bool = True,
    ):
        owner = "LegacySurveyCutouts"
        parts = urllib.parse.urlsplit(base_url) if isinstance(base_url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ParameterError(
                f"The 'base_url' parameter of {owner} must be an http(s) URL such as "
                f"{DEFAULT_BASE_URL!r}. Got {base_url!r} instead."
            )
        if not isinstance(layer, str) or (check_layer and layer not in LAYERS):
            raise ParameterError(
                f"The 'layer' parameter of {owner} must be one of {', '.join(LAYERS)} (or pass "
                f"check_layer=False for another). Got {layer!r} instead."
            )
        retries = check_int(retries, "retries", owner, low=0)
        max_concurrent = check_int(max_concurrent, "max_concurrent", owner, low=1)
        self.base_url = base_url.rstrip("/")
        self.layer = layer
        self.pixel_scale = check_scalar(
            pixel_scale, "pixel_scale", owner, low=0, low_inclusive=False
        )
        self.timeout = check_scalar(timeout, "timeout", owner, low=0, low_inclusive=False)
        self.retries = retries
        self.backoff = check_scalar(backoff, "backoff", owner, low=0)
        self.max_backoff = check_scalar(max_backoff, "max_backoff", owner, low=0)
        self.max_concurrent = max_concurrent
        self.max_transfer_time = check_scalar(
            max_transfer_time, "max_transfer_time", owner, low=0, low_inclusive=False
        )
        self.nan_policy = nan_policy
        self.max_bad_fraction = max_bad_fraction
        self.cache_dir = None if cache_dir is None else Path(cache_dir).expanduser()
        self._slots = threading.BoundedSemaphore(max_concurrent)

    def __repr__(self):
        return (
            f"LegacySurveyCutouts({self.base_url!r}, layer={self.layer!r}, "
            f"pixel_scale={self.pixel_scale}, cache_dir={self.cache_dir!r})"
        )

    # -- requests -------------------------------------------------------------------------
    def _params(self, ra: float, dec: float, size: int, bands) -> dict:
        return {
            "ra": f"{ra:.7f}",
            "dec": f"{dec:.7f}",
            "layer": self.layer,
            "pixscale": f"{self.pixel_scale:g}",
            "bands": "".join(bands),
            "size": str(size),
        }

    def url(self, ra: float, dec: float, size: int, bands="grz") -> str:
        """The request URL for a cutout (RA and Dec to 1e-7 deg)."""
        bands = check_bands(bands, "LegacySurveyCutouts.url")
        params = self._params(ra, dec, check_size(size, "LegacySurveyCutouts.url"), bands)
        return f"{self.base_url}/fits-cutout?{urllib.parse.urlencode(params)}"

    def cache_path(self, ra: float, dec: float, size: int, bands="grz") -> Path | None:
        """Where the cache keeps this request's answer (``None`` without a cache)."""
        if self.cache_dir is None:
            return None
        bands = check_bands(bands, "LegacySurveyCutouts.cache_path")
        params = self._params(ra, dec, check_size(size, "cache_path"), bands)
        params["base_url"] = self.base_url
        key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
        return self.cache_dir / key[:2] / f"{key}.fits"

    def _read_body(self, resp) -> bytes:
        """The whole body, in chunks, within ``max_transfer_time`` (``timeout`` only bounds
        each read, so a server trickling bytes could otherwise hold a slot for ever)."""
        start = time.monotonic()
        chunks = []
        while chunk := resp.read1(1 << 16):  # one recv at most: the clock is checked often
            chunks.append(chunk)
            if time.monotonic() - start > self.max_transfer_time:
                raise _RetryableError(
                    f"transfer took longer than max_transfer_time={self.max_transfer_time:g} s"
                )
        return b"".join(chunks)

    def _download(self, url: str) -> bytes:
        """One attempt; raises _RetryableError or CutoutError."""
        req = urllib.request.Request(
            url, headers={"User-Agent": f"clusterlens/{__version__} (python urllib)"}
        )
        with self._slots:
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    ctype = resp.headers.get("Content-Type", "")
                    expected = resp.headers.get("Content-Length")
                    raw = self._read_body(resp)
            except urllib.error.HTTPError as exc:
                if exc.code >= 500 or exc.code == 429:
                    raise _RetryableError(
                        f"HTTP {exc.code} {exc.reason}", _retry_after(exc.headers)
                    ) from exc
                raise CutoutError(f"HTTP {exc.code} {exc.reason} from {url}") from exc
            except (
                urllib.error.URLError,
                http.client.HTTPException,
                ConnectionError,
                TimeoutError,
            ) as exc:
                reason = getattr(exc, "reason", exc)
                raise _RetryableError(f"{type(exc).__name__}: {reason}") from exc
        if expected is not None and expected.isdigit() and len(raw) < int(expected):
            raise _RetryableError(f"short transfer: {len(raw)} of {expected} bytes")
        if "html" in ctype.lower():
            parse_fits_bytes(raw, where=f"answer from {url}")  # raises with the page text
        return raw

    def _wait(self, url: str, attempt: int, retry_after: float | None) -> float:
        """Seconds before retry ``attempt`` (>= 1): exponential backoff, stretched by up to
        25% by a jitter derived from the URL (so that many workers failing together do not
        retry in lockstep, yet a run is reproducible), at least the server's Retry-After,
        at most ``max_backoff``."""
        digest = hashlib.sha256(f"{url}#{attempt}".encode()).digest()
        jitter = 1.0 + 0.25 * int.from_bytes(digest[:4], "big") / 2**32
        wait = self.backoff * 2 ** (attempt - 1) * jitter
        return min(max(wait, retry_after or 0.0), self.max_backoff)

    def _checked(self, raw: bytes, size: int, bands, where: str):
        """``(image, header)`` of a FITS answer that passed every cutout check."""
        data, header = parse_fits_bytes(raw, where=where)
        image, header, _ = validate_cutout(
            data,
            header,
            size=size,
            bands=bands,
            nan_policy=self.nan_policy,
            max_bad_fraction=self.max_bad_fraction,
            where=where,
        )
        return image, header

    def invalidate(self, ra: float, dec: float, size: int, bands="grz") -> None:
        """Forget the cached answer for this request, if any (the next call fetches)."""
        cached = self.cache_path(float(ra) % 360.0, float(dec), size, bands)
        if cached is not None:
            cached.unlink(missing_ok=True)

    def fetch_bytes(self, ra: float, dec: float, size: int, bands="grz") -> bytes:
        """The raw FITS answer for one cutout, from the cache or the service.

        Only an answer that passes the cutout checks (FITS, ``size``, ``bands``, bad
        pixels) is cached; a wrong one is refused at once, naming what was wrong.

        Raises
        ------
        CutoutError
            After the last retry, or at once for a non-retryable or wrong answer; the
            message says what happened on each attempt.
        """
        ra = check_scalar(ra, "ra", "LegacySurveyCutouts.get")
        dec = check_scalar(dec, "dec", "LegacySurveyCutouts.get", low=-90, high=90)
        ra %= 360.0
        bands = check_bands(bands, "LegacySurveyCutouts.get")
        url = self.url(ra, dec, size, bands)
        cached = self.cache_path(ra, dec, size, bands)
        if cached is not None and cached.is_file():
            raw = cached.read_bytes()
            try:
                self._checked(raw, size, bands, f"cache file {str(cached)!r}")
                return raw
            except CutoutError:
                cached.unlink(missing_ok=True)  # damaged or wrong: fetch again
        errors = []
        retry_after = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self._wait(url, attempt, retry_after))
            try:
                raw = self._download(url)
                parse_fits_bytes(raw, where=f"answer from {url}")
            except _RetryableError as exc:
                errors.append(str(exc))
                retry_after = exc.retry_after
                continue
            except IncompleteFitsError as exc:  # a body cut short without Content-Length
                errors.append(str(exc))
                retry_after = None
                continue
            # a complete FITS of the wrong size or bands is the server's answer, not a
            # transfer accident: refuse it now, and never cache it
            self._checked(raw, size, bands, f"answer from {url}")
            if cached is not None:
                atomic_write_bytes(cached, raw)
            return raw
        raise CutoutError(
            f"Gave up on {url} after {self.retries + 1} attempt(s): " + "; ".join(errors)
        )

    def get(self, ra, dec, size, bands="grz", *, cluster_id=None):
        """The validated cutout around (ra, dec) [deg]; see :class:`CutoutSource`."""
        bands = check_bands(bands, "LegacySurveyCutouts.get")
        size = check_size(size, "LegacySurveyCutouts.get")
        raw = self.fetch_bytes(ra, dec, size, bands)
        where = f"cutout at RA={float(ra):.6f}, Dec={float(dec):.6f} ({self.layer})"
        image, header = self._checked(raw, size, bands, where)
        header["LAYER"] = (self.layer, "Legacy Surveys layer")
        header["PIXSCALE"] = (self.pixel_scale, "arcsec / pixel")
        return image, header
