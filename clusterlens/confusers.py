"""Confusers: things in a cluster field that look like lensed arcs but are not.

The paper's false positives were spiral arms of late-type galaxies, edge-on discs, ringed
galaxies, stellar streams and tidal debris, and blue background galaxies near the BCG; survey
cutouts add bright stars (halos, diffraction spikes, bleed trails) and masked or saturated
patches.  :func:`draw_confusers` draws a list of them for one field and
:func:`paint_confusers` paints their light on the (band, y, x) image *before* the PSF (so they
go through the same PSF as the rest of the field); :func:`apply_masks` then overwrites the
observed image where a mask or a saturated core says so, *after* the noise, and returns the
mask of the pixels it overwrote.

Kinds (:data:`CONFUSER_KINDS`), all with their typical Legacy Surveys appearance:

``spiral``
    a foreground disc galaxy (r = 16.5-19.5, scale length 1.2-3.5") with two or three
    logarithmic arms (pitch 12-30 deg) and a red bulge;
``edge_on``
    a thin disc (q = 0.08-0.25, r_e = 1-3.5") with a small bulge;
``ring``
    a Gaussian ring (radius 2-7", width 0.25-0.7") with knots and a red core; 30% of them sit
    on the BCG with the BCG's colour (the paper's "ring-galaxy like BCG");
``merger``
    two overlapping galaxies with one or two curved tidal tails (5-15% of the light);
``arclet``
    a curved, tangentially elongated blue galaxy 4-25" from the BCG (length 2-6", width
    0.25-0.6", r = 20-23): 70% curve around the BCG like an arc, the rest are curved the
    other way or straight;
``bright_star``
    a star of r = 11-15 with a power-law halo (8% of its flux), spikes along the configured
    angles (``FieldConfig.spike_angles``, 2.5% of the flux), its core clipped at the
    saturation level and, brighter than r = 14, a bleed trail along the columns;
``mask``
    a blank rectangle (zero in every band: no coverage, a chip gap), a missing band in a
    rectangle (zero in one band), or a bleed trail from a star outside the cutout (a constant
    column segment).

The numbers above are the defaults of the drawing code: they make plausible 0.262"/pixel
cutouts at ~1.3" seeing, not a census.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numba import njit
from scipy.special import gammaincinv, gammaln

from clusterlens.observe.photometry import mag_to_nanomaggies
from clusterlens.sources._kernels import add_sersic_stamps

__all__ = [
    "CONFUSER_KINDS",
    "ARC_LIKE_KINDS",
    "Confuser",
    "draw_confusers",
    "paint_confusers",
    "apply_masks",
]

#: Every kind of confuser, in the order of ``FieldConfig.confuser_weights``.
CONFUSER_KINDS = ("spiral", "edge_on", "ring", "merger", "arclet", "bright_star", "mask")
#: The kinds that look like arcs; a hard negative has at least one of them.
ARC_LIKE_KINDS = ("spiral", "edge_on", "ring", "merger", "arclet")

_STAR_HALO_FRACTION = 0.08
_STAR_SPIKE_FRACTION = 0.025


@dataclass
class Confuser:
    """One confuser: its kind, centre [arcsec, from the cutout centre], r magnitude and the
    parameters its painter needs (see the module docstring)."""

    kind: str
    x: float
    y: float
    mag_r: float
    params: dict = field(default_factory=dict)


# --- drawing ---------------------------------------------------------------------------------
def _blue_colours(rng):
    return float(rng.uniform(0.1, 0.6)), float(rng.uniform(0.0, 0.5))


def _disc_colours(rng):
    return float(rng.uniform(0.4, 0.9)), float(rng.uniform(0.2, 0.6))


def _red_colours(rng):
    return float(rng.uniform(1.0, 1.8)), float(rng.uniform(0.5, 1.1))


def draw_confusers(rng, kinds, *, half_width, bcg_colours=(1.5, 0.7)) -> list[Confuser]:
    """Draw one confuser of each kind in ``kinds``.

    Parameters
    ----------
    rng : numpy.random.Generator
    kinds : sequence of str
        Kinds from :data:`CONFUSER_KINDS`.
    half_width : float
        Half the cutout side [arcsec]; confusers are placed within 80% of it.
    bcg_colours : (float, float)
        The BCG's g - r and r - z (a ring on the BCG takes them).
    """
    out = []
    lim = 0.8 * half_width
    for kind in kinds:
        x, y = (float(v) for v in rng.uniform(-lim, lim, 2))
        p: dict = {"phi": float(rng.uniform(-180.0, 180.0))}
        if kind == "spiral":
            mag = rng.uniform(16.5, 19.5)
            p.update(
                h=rng.uniform(1.2, 3.5),
                q=rng.uniform(0.45, 1.0),
                pitch=rng.uniform(12.0, 30.0),
                arms=int(rng.choice([2, 2, 3])),
                amp=rng.uniform(0.5, 0.85),
                phase=rng.uniform(0.0, 2.0 * math.pi),
                bulge_frac=rng.uniform(0.1, 0.35),
                colours=_blue_colours(rng),
                bulge_colours=_red_colours(rng),
            )
        elif kind == "edge_on":
            mag = rng.uniform(16.5, 19.5)
            p.update(
                r_e=rng.uniform(1.0, 3.5),
                q=rng.uniform(0.08, 0.25),
                bulge_frac=rng.uniform(0.05, 0.3),
                colours=_disc_colours(rng),
                bulge_colours=_red_colours(rng),
            )
        elif kind == "ring":
            on_bcg = bool(rng.uniform() < 0.3)
            if on_bcg:
                x = y = 0.0
                colours = (float(bcg_colours[0]), float(bcg_colours[1]))
            else:
                colours = _blue_colours(rng) if rng.uniform() < 0.6 else _red_colours(rng)
            mag = rng.uniform(18.0, 20.0)
            p.update(
                radius=rng.uniform(3.0, 7.0) if on_bcg else rng.uniform(2.0, 5.0),
                width=rng.uniform(0.2, 0.5),
                q=rng.uniform(0.6, 1.0),
                knots=int(rng.integers(3, 7)),
                knot_amp=rng.uniform(0.0, 0.6),
                knot_phase=rng.uniform(0.0, 2.0 * math.pi),
                on_bcg=on_bcg,
                core_mag=99.0 if on_bcg else mag + rng.uniform(-0.5, 1.5),
                colours=colours,
                core_colours=_red_colours(rng),
            )
        elif kind == "merger":
            mag = rng.uniform(17.0, 19.5)
            red = bool(rng.uniform() < 0.5)
            n_tails = int(rng.integers(1, 3))
            p.update(
                r_e=rng.uniform(0.8, 2.0),
                sep=rng.uniform(1.0, 3.0),
                ratio=rng.uniform(0.3, 1.0),
                colours=_red_colours(rng) if red else _disc_colours(rng),
                tail_frac=rng.uniform(0.15, 0.3),
                tails=[
                    {
                        "curvature": rng.uniform(4.0, 15.0),
                        "length": rng.uniform(4.0, 10.0),
                        "width": rng.uniform(0.4, 1.0),
                        "side": float(rng.choice([-1.0, 1.0])),
                        "angle": rng.uniform(0.0, 360.0),
                    }
                    for _ in range(n_tails)
                ],
            )
        elif kind == "arclet":
            dist = rng.uniform(4.0, min(25.0, max(lim, 5.0)))
            az = rng.uniform(0.0, 2.0 * math.pi)
            x, y = dist * math.cos(az), dist * math.sin(az)
            mode = rng.choice(["around", "around", "around", "against", "straight"], p=None)
            if mode == "around":  # tangential, curved around the BCG like a lensed arc
                curvature = dist * rng.uniform(0.8, 1.5)
            elif mode == "against":
                curvature = -dist * rng.uniform(0.8, 2.0)
            else:
                curvature = 1e4
            mag = rng.uniform(19.5, 22.5)
            p.update(
                curvature=float(curvature),
                length=rng.uniform(2.0, 6.0),
                width=rng.uniform(0.25, 0.6),
                # tangential within 20 deg: the direction perpendicular to the radius
                tangent=math.degrees(az) + 90.0 + rng.normal(0.0, 10.0),
                colours=_blue_colours(rng),
                mode=str(mode),
            )
        elif kind == "bright_star":
            mag = rng.uniform(11.0, 15.0)
            g_r = rng.uniform(0.3, 1.4)
            p.update(
                halo_r=rng.uniform(1.5, 3.0),
                colours=(float(g_r), float(0.5 * g_r + rng.uniform(-0.1, 0.2))),
                spike_length=12.0 * 10.0 ** (-0.2 * (mag - 12.0)),  # arcsec, ~ sqrt(flux)
                bleed_width=int(rng.integers(1, 4)),
            )
        elif kind == "mask":
            mag = 99.0
            sub = str(rng.choice(["blank", "band_gap", "bleed"]))
            p.update(sub=sub)
            if sub == "bleed":
                p.update(
                    length=rng.uniform(0.3, 1.0),
                    width=int(rng.integers(1, 4)),
                    level=rng.uniform(5.0, 20.0),
                )
            else:
                edge = bool(rng.uniform() < 0.5)  # a strip along an edge (footprint border)
                p.update(
                    edge=edge,
                    side=int(rng.integers(4)),
                    depth=rng.uniform(0.05, 0.3),
                    w=rng.uniform(0.05, 0.25),
                    h=rng.uniform(0.05, 0.25),
                    band=int(rng.integers(3)),
                )
        else:
            raise ValueError(f"unknown confuser kind {kind!r}")
        out.append(Confuser(kind, float(x), float(y), float(mag), p))
    return out


# --- numba stamps (unit-normalised by the caller) --------------------------------------------
@njit(cache=True, error_model="numpy")
def _spiral_stamp(out, xc, yc, h, q, phi, inv_tan_pitch, arms, amp, phase):
    """Exponential disc with logarithmic arms, ``I = exp(-r/h) (1 - a + 2.5 a cos_arm^4)``
    in the deprojected frame; the arms fade inside 0.7 h where the bulge dominates."""
    ny, nx = out.shape
    c, s = math.cos(phi), math.sin(phi)
    for i in range(ny):
        for j in range(nx):
            dx, dy = j - xc, i - yc
            xp = c * dx + s * dy
            yp = (c * dy - s * dx) / q
            r = math.sqrt(xp * xp + yp * yp) + 1e-3
            th = math.atan2(yp, xp)
            psi = arms * (th - math.log(r / h) * inv_tan_pitch) + phase
            arm = (0.5 * (1.0 + math.cos(psi))) ** 4
            a = amp * min(1.0, (r / (0.7 * h)) ** 2)
            out[i, j] = math.exp(-r / h) * (1.0 - a + 2.5 * a * arm)
    return out


@njit(cache=True, error_model="numpy")
def _ring_stamp(out, xc, yc, radius, width, q, phi, knots, knot_amp, knot_phase):
    ny, nx = out.shape
    c, s = math.cos(phi), math.sin(phi)
    for i in range(ny):
        for j in range(nx):
            dx, dy = j - xc, i - yc
            xp = c * dx + s * dy
            yp = (c * dy - s * dx) / q
            r = math.sqrt(xp * xp + yp * yp)
            th = math.atan2(yp, xp)
            u = (r - radius) / width
            out[i, j] = math.exp(-0.5 * u * u) * (
                1.0 + knot_amp * math.cos(knots * th + knot_phase)
            )
    return out


@njit(cache=True, error_model="numpy")
def _arc_stamp(out, cx, cy, radius, theta0, half_angle, width, skew):
    """A curved streak along the circle of centre (cx, cy) and ``radius`` [pixels], centred at
    angle ``theta0``: Gaussian across (sigma ``width``, thinner towards the tips), a
    super-Gaussian ``exp(-u^4 / 2 - skew u)`` along, ``u`` the angle over ``half_angle``."""
    ny, nx = out.shape
    for i in range(ny):
        for j in range(nx):
            dx, dy = j - cx, i - cy
            rho = math.sqrt(dx * dx + dy * dy)
            d = math.atan2(dy, dx) - theta0
            d = (d + math.pi) % (2.0 * math.pi) - math.pi
            u = d / half_angle
            if abs(u) > 2.5:
                out[i, j] = 0.0
                continue
            w = width * (0.55 + 0.45 * math.exp(-u * u))
            v = (rho - radius) / w
            out[i, j] = math.exp(-0.5 * v * v - 0.5 * u**4 - skew * u) / w
    return out


@njit(cache=True, error_model="numpy")
def _spike_stamp(out, xc, yc, cos_a, sin_a, length, width):
    """Diffraction spikes: rays from (xc, yc) along each direction, Gaussian across
    (sigma ``width`` pixels), fading as ``(1 - s / length)^2`` along."""
    ny, nx = out.shape
    for i in range(ny):
        for j in range(nx):
            dx, dy = j - xc, i - yc
            acc = 0.0
            for k in range(cos_a.size):
                along = dx * cos_a[k] + dy * sin_a[k]
                if along <= 0.0 or along >= length:
                    continue
                across = dy * cos_a[k] - dx * sin_a[k]
                f = 1.0 - along / length
                acc += f * f * math.exp(-0.5 * (across / width) ** 2)
            out[i, j] = acc
    return out


@njit(cache=True, error_model="numpy")
def _halo_stamp(out, xc, yc, r_h):
    """A power-law stellar halo, ``(1 + (r / r_h)^2)^-1.5`` (projected Plummer-like wings)."""
    ny, nx = out.shape
    inv = 1.0 / (r_h * r_h)
    for i in range(ny):
        for j in range(nx):
            dx, dy = j - xc, i - yc
            out[i, j] = (1.0 + (dx * dx + dy * dy) * inv) ** -1.5
    return out


# --- painting --------------------------------------------------------------------------------
class _Painter:
    """Paints onto a (band, y, x) image in pixel units (origin at the image centre)."""

    def __init__(self, image, pixel_scale):
        self.image = image
        self.size = image.shape[-1]
        self.scale = pixel_scale
        self.c = (self.size - 1) / 2.0

    def pix(self, x, y):
        return x / self.scale + self.c, y / self.scale + self.c

    def box(self, col, line, half):
        """The image box within ``half`` pixels of (col, line): (i0, i1, j0, j1) or None."""
        half = min(float(half), float(self.size))
        i0 = max(0, int(math.floor(line - half)))
        i1 = min(self.size, int(math.ceil(line + half)) + 1)
        j0 = max(0, int(math.floor(col - half)))
        j1 = min(self.size, int(math.ceil(col + half)) + 1)
        if i1 <= i0 or j1 <= j0:
            return None
        return i0, i1, j0, j1

    def add(self, stamp, box, mag_r, colours, *, normalise=True):
        """Add ``stamp`` (unit total flux if ``normalise``) times the fluxes of ``mag_r`` and
        (g - r, r - z) ``colours``."""
        if normalise:
            total = stamp.sum()
            if not total > 0:
                return
            stamp = stamp / total
        g_r, r_z = colours
        fluxes = mag_to_nanomaggies(np.array([mag_r + g_r, mag_r, mag_r - r_z]))
        i0, i1, j0, j1 = box
        for b in range(3):
            self.image[b, i0:i1, j0:j1] += fluxes[b] * stamp

    def sersic(self, x, y, mag_r, colours, r_e, n, q, phi_deg):
        scale = self.scale
        r_e_pix = max(r_e / scale, 0.05)
        col, line = self.pix(x, y)
        b = gammaincinv(2.0 * n, 0.5)
        log_i0 = 2.0 * n * math.log(b) - math.log(2.0 * math.pi * n * r_e_pix**2) - gammaln(2 * n)
        half = min(self.size, 10.0 * r_e_pix / math.sqrt(q) + 4.0)
        g_r, r_z = colours
        fluxes = mag_to_nanomaggies(np.array([mag_r + g_r, mag_r, mag_r - r_z]))
        add_sersic_stamps(
            self.image, fluxes.reshape(3, 1), np.array([col]), np.array([line]),
            np.array([r_e_pix]), np.array([float(n)]), np.array([float(q)]),
            np.array([math.radians(phi_deg)]), np.array([b]), np.array([log_i0]),
            np.array([half]), 5,
        )  # fmt: skip

    def stamp(self, kernel, x, y, half_arcsec, *args):
        """Evaluate ``kernel(out, xc, yc, *args)`` on the box around (x, y) [arcsec]."""
        col, line = self.pix(x, y)
        box = self.box(col, line, half_arcsec / self.scale)
        if box is None:
            return None, None
        i0, i1, j0, j1 = box
        out = np.empty((i1 - i0, j1 - j0))
        kernel(out, col - j0, line - i0, *args)
        return out, box


def _split(mag, frac):
    """Magnitudes of the two parts of a total ``mag`` split ``frac`` : ``1 - frac``."""
    frac = min(max(frac, 1e-6), 1.0 - 1e-6)
    return mag - 2.5 * math.log10(frac), mag - 2.5 * math.log10(1.0 - frac)


def _arc(painter, x, y, mag, colours, *, curvature, length, width, tangent_deg, skew=0.0):
    """A curved streak centred on (x, y) [arcsec] whose tangent there is ``tangent_deg``,
    curving with radius ``curvature`` (> 0: towards the left of the tangent direction)."""
    scale = painter.scale
    t = math.radians(tangent_deg)
    # the curvature centre lies along the normal (left of the tangent for positive radius)
    nx_, ny_ = -math.sin(t), math.cos(t)
    cx, cy = x + curvature * nx_, y + curvature * ny_
    theta0 = math.atan2(y - cy, x - cx)
    rad = abs(curvature)
    half_angle = max(0.5 * length / rad, 1e-4)
    half = 0.5 * 2.5 * length + 4.0 * width + 2.0 * scale
    col, line = painter.pix(x, y)
    box = painter.box(col, line, half / scale)
    if box is None:
        return
    i0, i1, j0, j1 = box
    ccol, cline = painter.pix(cx, cy)
    out = np.empty((i1 - i0, j1 - j0))
    _arc_stamp(out, ccol - j0, cline - i0, rad / scale, theta0, half_angle, width / scale, skew)
    painter.add(out, box, mag, colours)


def paint_confusers(image, confusers, *, pixel_scale, spike_angles=(0.0, 90.0)):
    """Paint the light of ``confusers`` onto ``image`` (band, y, x) [nanomaggies per pixel]
    before the PSF.  Masks are not painted here (see :func:`apply_masks`)."""
    painter = _Painter(image, pixel_scale)
    scale = pixel_scale
    for cf in confusers:
        p = cf.params
        if cf.kind == "spiral":
            m_bulge, m_disc = _split(cf.mag_r, p["bulge_frac"])
            h = p["h"]
            stamp, box = painter.stamp(
                _spiral_stamp, cf.x, cf.y, 6.0 * h / math.sqrt(p["q"]), h / scale, p["q"],
                math.radians(p["phi"]), 1.0 / math.tan(math.radians(p["pitch"])),
                float(p["arms"]), p["amp"], p["phase"],
            )  # fmt: skip
            if stamp is not None:
                painter.add(stamp, box, m_disc, p["colours"])
            painter.sersic(cf.x, cf.y, m_bulge, p["bulge_colours"], 0.3 * h, 3.0, 0.8, p["phi"])
        elif cf.kind == "edge_on":
            m_bulge, m_disc = _split(cf.mag_r, p["bulge_frac"])
            painter.sersic(cf.x, cf.y, m_disc, p["colours"], p["r_e"], 1.0, p["q"], p["phi"])
            painter.sersic(
                cf.x, cf.y, m_bulge, p["bulge_colours"], 0.15 * p["r_e"], 2.5, 0.7, p["phi"]
            )
        elif cf.kind == "ring":
            half = (p["radius"] + 4.0 * p["width"]) / p["q"]
            stamp, box = painter.stamp(
                _ring_stamp, cf.x, cf.y, half, p["radius"] / scale, p["width"] / scale, p["q"],
                math.radians(p["phi"]), float(p["knots"]), p["knot_amp"], p["knot_phase"],
            )  # fmt: skip
            if stamp is not None:
                painter.add(stamp, box, cf.mag_r, p["colours"])
            if not p["on_bcg"]:
                painter.sersic(
                    cf.x, cf.y, p["core_mag"], p["core_colours"], 0.6, 3.0, 0.85, p["phi"]
                )
        elif cf.kind == "merger":
            m_tails, m_gal = _split(cf.mag_r, p["tail_frac"])
            m_a, m_b = _split(m_gal, 1.0 / (1.0 + p["ratio"]))
            phi = math.radians(p["phi"])
            dx, dy = 0.5 * p["sep"] * math.cos(phi), 0.5 * p["sep"] * math.sin(phi)
            painter.sersic(cf.x - dx, cf.y - dy, m_a, p["colours"], p["r_e"], 2.5, 0.7, p["phi"])
            painter.sersic(
                cf.x + dx, cf.y + dy, m_b, p["colours"], 0.8 * p["r_e"], 2.0, 0.6, -p["phi"]
            )
            m_tail = m_tails + 2.5 * math.log10(len(p["tails"]))
            for t in p["tails"]:
                a = math.radians(t["angle"])
                # a tail starts at the pair and runs away from it
                start = 0.5 * t["length"] + 0.5 * p["sep"]
                tx, ty = cf.x + start * math.cos(a), cf.y + start * math.sin(a)
                _arc(
                    painter, tx, ty, m_tail, p["colours"],
                    curvature=t["side"] * t["curvature"], length=t["length"],
                    width=t["width"], tangent_deg=t["angle"], skew=0.8,
                )  # fmt: skip
        elif cf.kind == "arclet":
            _arc(
                painter, cf.x, cf.y, cf.mag_r, p["colours"], curvature=p["curvature"],
                length=p["length"], width=p["width"], tangent_deg=p["tangent"],
            )  # fmt: skip
        elif cf.kind == "bright_star":
            col, line = painter.pix(cf.x, cf.y)
            m_halo = cf.mag_r - 2.5 * math.log10(_STAR_HALO_FRACTION)
            m_spike = cf.mag_r - 2.5 * math.log10(_STAR_SPIKE_FRACTION)
            m_core = cf.mag_r - 2.5 * math.log10(1.0 - _STAR_HALO_FRACTION - _STAR_SPIKE_FRACTION)
            # the halo's own normalisation within a box of ~60 r_h: most of its light
            stamp, box = painter.stamp(
                _halo_stamp, cf.x, cf.y, 60.0 * p["halo_r"], p["halo_r"] / scale
            )
            if stamp is not None:
                painter.add(stamp, box, m_halo, p["colours"])
            angles = np.radians(np.concatenate([spike_angles, np.asarray(spike_angles) + 180.0]))
            length = p["spike_length"] / scale
            stamp, box = painter.stamp(
                _spike_stamp, cf.x, cf.y, p["spike_length"] + 2.0 * scale, np.cos(angles),
                np.sin(angles), length, 0.6,
            )  # fmt: skip
            if stamp is not None:
                painter.add(stamp, box, m_spike, p["colours"])
            _add_point(painter, col, line, m_core, p["colours"])
    return image


def _add_point(painter, col, line, mag_r, colours):
    """A point source split bilinearly over the four nearest pixels."""
    g_r, r_z = colours
    fluxes = mag_to_nanomaggies(np.array([mag_r + g_r, mag_r, mag_r - r_z]))
    j0, i0 = int(math.floor(col)), int(math.floor(line))
    fx, fy = col - j0, line - i0
    n = painter.size
    for di, dj, w in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)),
                      (1, 1, fy * fx)):  # fmt: skip
        ii, jj = i0 + di, j0 + dj
        if 0 <= ii < n and 0 <= jj < n:
            painter.image[:, ii, jj] += fluxes * w


def apply_masks(image, noiseless, confusers, *, pixel_scale, saturation_level) -> np.ndarray:
    """Overwrite ``image`` and ``noiseless`` (band, y, x) where confusers saturate or mask it.

    Star cores are set to ``saturation_level`` [nanomaggies per pixel] in the bands where the
    noiseless image exceeds it, and stars brighter than r = 14 bleed along the columns (all
    bands at the saturation level); then each ``mask`` confuser blanks a rectangle (zero in
    all bands), drops one band in a rectangle (zero), or lays a constant bleed trail.

    Returns
    -------
    ndarray of bool, shape of ``image``
        True where a pixel was overwritten.
    """
    nb, n, _ = image.shape
    c = (n - 1) / 2.0
    sat = np.zeros(image.shape, bool)
    for cf in confusers:
        if cf.kind != "bright_star":
            continue
        col, line = cf.x / pixel_scale + c, cf.y / pixel_scale + c
        box = _Painter(image, pixel_scale).box(col, line, 12.0)
        if box is None:
            continue
        i0, i1, j0, j1 = box
        core = noiseless[:, i0:i1, j0:j1] > saturation_level
        sat[:, i0:i1, j0:j1] |= core
        if cf.mag_r < 14.0 and core.any():
            length = int(round(8.0 * (14.0 - cf.mag_r) ** 1.5)) + 3
            jc = int(round(col))
            half_w = cf.params["bleed_width"] // 2
            ja, jb = max(0, jc - half_w), min(n, jc + half_w + 1)
            ia, ib = max(0, int(line) - length), min(n, int(line) + length + 1)
            sat[:, ia:ib, ja:jb] = True
    image[sat] = saturation_level
    noiseless[sat] = saturation_level
    mask = sat
    for cf in confusers:
        if cf.kind != "mask":
            continue
        p = cf.params
        col, line = cf.x / pixel_scale + c, cf.y / pixel_scale + c
        if p["sub"] == "bleed":
            half = int(p["length"] * n) // 2
            ic, jc = int(round(line)), int(round(col))
            region = (
                slice(None),
                slice(max(0, ic - half), min(n, ic + half + 1)),
                slice(max(0, jc), min(n, jc + p["width"])),
            )
            value = p["level"]
        else:
            if p["edge"]:
                d = max(1, int(p["depth"] * n))
                rows, cols = [
                    (slice(0, d), slice(None)),
                    (slice(n - d, n), slice(None)),
                    (slice(None), slice(0, d)),
                    (slice(None), slice(n - d, n)),
                ][p["side"]]
            else:
                hw, hh = max(1, int(p["w"] * n)), max(1, int(p["h"] * n))
                rows = slice(max(0, int(line) - hh), min(n, int(line) + hh))
                cols = slice(max(0, int(col) - hw), min(n, int(col) + hw))
            bands = slice(None) if p["sub"] == "blank" else slice(p["band"], p["band"] + 1)
            region = (bands, rows, cols)
            value = 0.0
        image[region] = value
        noiseless[region] = value
        mask[region] = True
    return mask
