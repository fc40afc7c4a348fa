"""numba kernels of the observing step (private; inputs are assumed valid)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__: list[str] = []


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _add_shifted(dst, src, weight, shift):
    """dst[j] += weight * src[j + shift] wherever j + shift is inside src (same length)."""
    n = dst.size
    j0 = max(0, -shift)
    j1 = min(n, n - shift)
    if j1 <= j0:
        return
    # views starting at 0, so that the loop carries no index checks and vectorises
    d = dst[j0:j1]
    s = src[j0 + shift : j1 + shift]
    for m in range(d.size):
        d[m] += weight * s[m]


@njit(cache=True, error_model="numpy")
def convolve_separable(image, profile, out):
    """``out`` = ``image`` convolved with ``outer(profile, profile)`` (odd length), the same
    size as ``image`` and centred on it, zero outside: ``fftconvolve(mode="same")``'s result,
    summed directly in two 1-D passes."""
    ny, nx = image.shape
    k = profile.size
    h = k // 2
    rows = np.zeros((ny, nx))
    for i in range(ny):
        for t in range(k):
            _add_shifted(rows[i], image[i], profile[t], h - t)
    out[:, :] = 0.0
    for i in range(ny):
        for t in range(k):
            src = i + h - t
            if 0 <= src < ny:
                _add_shifted(out[i], rows[src], profile[t], 0)
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
