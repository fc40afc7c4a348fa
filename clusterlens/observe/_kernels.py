"""numba kernels of the observing step (private; inputs are assumed valid)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__: list[str] = []


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _add_shifted(dst, src, weight, shift):
    """dst[j] += weight * src[j + shift] wherever j + shift is inside src."""
    j0 = max(0, -shift)
    j1 = min(dst.size, src.size - shift)
    if j1 <= j0:
        return
    # views starting at 0, so that the loop carries no index checks and vectorises
    d = dst[j0:j1]
    s = src[j0 + shift : j1 + shift]
    for m in range(d.size):
        d[m] += weight * s[m]


@njit(cache=True, error_model="numpy")
def convolve_separable(image, profile, out, trim=0):
    """``out`` = ``image`` convolved with ``outer(profile, profile)`` (odd length), centred
    on it, zero outside: ``fftconvolve(mode="same")``'s result summed directly in two 1-D
    passes, without its ``trim`` outer pixels on each side (``out`` is ``(ny - 2 trim,
    nx - 2 trim)``).  Only the rows and columns the kept pixels need are summed, each pixel
    in the same order as with ``trim = 0``, so the kept pixels are the same numbers."""
    ny, nx = image.shape
    k = profile.size
    h = k // 2
    oy, ox = ny - 2 * trim, nx - 2 * trim
    # first pass (along x) on the rows the second pass reads, at the kept columns only
    r0 = max(0, trim - h)
    r1 = min(ny, ny - trim + h)
    rows = np.zeros((r1 - r0, ox))
    for i in range(r0, r1):
        for t in range(k):
            _add_shifted(rows[i - r0], image[i], profile[t], trim + h - t)
    out[:, :] = 0.0
    for i in range(oy):
        for t in range(k):
            src = i + trim + h - t
            if r0 <= src < r1:
                _add_shifted(out[i], rows[src - r0], profile[t], 0)
    return out


@njit(cache=True, error_model="numpy")
def add_sky_and_shot_noise(smooth, normal, sky_sigma, gain, noisy32, smooth32):
    """``noisy32 = smooth + normal sqrt(sky_sigma^2 + max(smooth, 0) / gain)`` per band, and
    ``smooth32`` = ``smooth``, both as float32, in one pass (same float64 arithmetic and order
    as the numpy expression, so the same pixels)."""
    nb, ny, nx = smooth.shape
    for b in range(nb):
        var_sky = sky_sigma[b] ** 2
        g = gain[b]
        for i in range(ny):
            for j in range(nx):
                f = smooth[b, i, j]
                shot = max(f, 0.0) / g
                noisy32[b, i, j] = f + normal[b, i, j] * math.sqrt(var_sky + shot)
                smooth32[b, i, j] = f
