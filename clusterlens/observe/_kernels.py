"""numba kernels of the observing step (private; inputs are assumed valid)."""

from __future__ import annotations

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
