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


@njit(cache=True, error_model="numpy")
def poisson_noise(rng, arc, gain, out):
    """``out = Poisson(lam) / g`` per band (gain ``g``, ``lam = g max(arc, 0)``), drawing
    from ``rng`` exactly what ``rng.poisson(lam) / g`` draws.

    numpy draws a mean ``lam < 10`` by multiplying uniforms until the product falls to
    ``exp(-lam)`` (none for ``lam == 0``) and ``lam >= 10`` by PTRS; this is the same
    algorithm on the same stream, except that the first uniform is compared with
    ``1 - lam`` (minus a few ulp) before ``exp(-lam)`` is computed: below that bound it is
    below ``exp(-lam) >= 1 - lam`` too, and most of an arc's pixels have ``lam << 1``."""
    nb, ny, nx = arc.shape
    for b in range(nb):
        g = gain[b]
        for i in range(ny):
            for j in range(nx):
                lam = max(arc[b, i, j], 0.0) * g
                if lam >= 10.0:
                    count = rng.poisson(lam)
                elif lam == 0.0:
                    count = 0
                else:
                    u = rng.random()
                    count = 0
                    if not u < (1.0 - lam) - 4.5e-16:
                        enlam = math.exp(-lam)
                        prod = u
                        while prod > enlam:
                            count += 1
                            prod *= rng.random()
                out[b, i, j] = count / g
    return out


@njit(cache=True, error_model="numpy")
def snr_and_visible_pixels(arc, sky_sigma, gain, k_sigma, snr, visible):
    """Per band: the matched-filter ``S/N = sqrt(sum f^2 / (sigma^2 + f / g))`` of the
    noiseless arc (``f = max(arc, 0)``) into ``snr``, and the number of pixels with
    ``f^2 > k^2 (sigma^2 + f / g)`` (above ``k_sigma`` times their noise) into ``visible``,
    in one pass."""
    nb, ny, nx = arc.shape
    k2 = k_sigma * k_sigma
    for b in range(nb):
        s2 = sky_sigma[b] ** 2
        g = gain[b]
        total = 0.0
        count = 0
        for i in range(ny):
            for j in range(nx):
                f = max(arc[b, i, j], 0.0)
                var = s2 + f / g
                f2 = f * f
                total += f2 / var
                if f2 > k2 * var:
                    count += 1
        snr[b] = math.sqrt(total)
        visible[b] = count
    return snr, visible


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def symmetric_kernel_spectrum(kernel, ly, lx):
    """The real DFT ``rfft2`` of a kernel (odd sides, centre at (0, 0) of an ``(ly, lx)``
    periodic grid) that is symmetric under ``y -> -y`` and ``x -> -x``: its transform is the
    real cosine sum ``sum_ab w_a w_b k_ab cos(2 pi u a / ly) cos(2 pi v b / lx)`` over the
    quadrant ``a, b >= 0`` (``w = 1`` on the axes, 2 off them; ``k_ab`` the mean of the four
    mirrored pixels, i.e. the kernel's even part), as two small matrix products over the
    rows ``u <= ly / 2`` (the others mirror them): ~10x cheaper than the 2-D FFT.

    Returns
    -------
    ndarray, float64, shape ``(ly, lx // 2 + 1)``
    """
    ky, kx = kernel.shape
    hy, hx = ky // 2, kx // 2
    nv = lx // 2 + 1
    nu = ly // 2 + 1
    cos_y = np.empty(ly)
    for m in range(ly):
        cos_y[m] = math.cos(2.0 * math.pi * m / ly)
    cos_x = np.empty(lx)
    for m in range(lx):
        cos_x[m] = math.cos(2.0 * math.pi * m / lx)
    # even part of the kernel on the quadrant, with the mirror weights
    quad = np.empty((hy + 1, hx + 1))
    for a in range(hy + 1):
        wa = 1.0 if a == 0 else 2.0
        for b in range(hx + 1):
            wb = 1.0 if b == 0 else 2.0
            mean = 0.25 * (
                kernel[hy + a, hx + b]
                + kernel[hy - a, hx + b]
                + kernel[hy + a, hx - b]
                + kernel[hy - a, hx - b]
            )
            quad[a, b] = wa * wb * mean
    # t[a, v] = sum_b quad[a, b] cos(2 pi v b / lx)
    t = np.zeros((hy + 1, nv))
    crow = np.empty(nv)
    for b in range(hx + 1):
        for v in range(nv):
            crow[v] = cos_x[(v * b) % lx]
        for a in range(hy + 1):
            q = quad[a, b]
            ta = t[a]
            for v in range(nv):
                ta[v] += q * crow[v]
    out = np.zeros((ly, nv))
    for u in range(nu):
        row = out[u]
        for a in range(hy + 1):
            c = cos_y[(u * a) % ly]
            ta = t[a]
            for v in range(nv):
                row[v] += c * ta[v]
    for u in range(nu, ly):
        out[u, :] = out[ly - u, :]
    return out


@njit(cache=True, error_model="numpy")
def add_kernel_at(out, kernel, rows, cols, values, trim):
    """``out += values[m] * kernel`` centred on pixel ``(rows[m], cols[m])`` of the untrimmed
    image, for every ``m``: the direct convolution of a few pixels.  ``out`` is the image
    without its ``trim`` border (its pixel ``(i, j)`` is the image's ``(i + trim, j + trim)``);
    the kernel's parts outside ``out`` are skipped."""
    oy, ox = out.shape
    ky, kx = kernel.shape
    hy, hx = ky // 2, kx // 2
    for m in range(rows.size):
        ci = rows[m] - trim
        cj = cols[m] - trim
        v = values[m]
        i0 = max(0, ci - hy)
        i1 = min(oy, ci + hy + 1)
        j0 = max(0, cj - hx)
        j1 = min(ox, cj + hx + 1)
        for i in range(i0, i1):
            krow = kernel[i - ci + hy]
            orow = out[i]
            for j in range(j0, j1):
                orow[j] += v * krow[j - cj + hx]
    return out


@njit(cache=True, error_model="numpy")
def split_bright(image, level, max_bright, faint):
    """``faint`` (float32) = ``image`` where ``|image| <= level``, 0 elsewhere; returns the
    rows, columns and values of the other (bright) pixels, or ``None`` when there are more
    than ``max_bright`` of them (``faint`` is then incomplete)."""
    ny, nx = image.shape
    rows = np.empty(max_bright, np.int64)
    cols = np.empty(max_bright, np.int64)
    values = np.empty(max_bright)
    k = 0
    for i in range(ny):
        for j in range(nx):
            v = image[i, j]
            if abs(v) > level:
                if k == max_bright:
                    return None
                rows[k] = i
                cols[k] = j
                values[k] = v
                k += 1
                faint[i, j] = 0.0
            else:
                faint[i, j] = v
    return rows[:k], cols[:k], values[:k]
