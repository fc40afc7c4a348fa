"""The source side of one mock: its redshift, drawing, placement behind the high-magnification
pixels, rendering, the S/N and visibility rules, and the parameters of the accepted mock
(steps 4-5 of :mod:`clusterlens.mock.simulator`).

Private module of :mod:`clusterlens.mock.simulator`: :class:`_ArcSteps` holds the source-side
methods of :class:`~clusterlens.mock.simulator.MockLensSimulator` (which inherits them), and
:func:`visible_pixels` is public there.
"""

from __future__ import annotations

import math

import numpy as np

from clusterlens.mock._kernels import placement_candidates
from clusterlens.mock._lens import LensMaps
from clusterlens.mock._scene import MockResult, observation_params
from clusterlens.observe import add_arc_noise, convolve, inject
from clusterlens.observe.noise import _snr_and_visible
from clusterlens.observe.photometry import nanomaggies_to_mag
from clusterlens.sources import BANDS, Sersic, StructuredSource

# Sources are drawn at least this far behind the cluster (a lens at the source's redshift
# deflects nothing).
_MIN_SOURCE_BEHIND = 0.05


def _arc_measures(sim, scene, arc_clean) -> dict:
    """``arc_radius`` [arcsec] and ``arc_surface_brightness`` [AB mag / arcsec^2, r] of the
    noiseless arc (:func:`clusterlens.mock.report.measure_arc`) at the scene's sky noise."""
    from clusterlens.mock.report import measure_arc

    pick = getattr(sim, "scene_conditions", None)  # per-field conditions, where the sim has them
    conditions = sim.conditions if pick is None else pick(scene)
    m = measure_arc(arc_clean, conditions.sky_sigma, conditions.pixel_scale)
    return {"arc_radius": m["arc_radius"], "arc_surface_brightness": m["arc_surface_brightness"]}


class _ArcSteps:
    """The source-side steps of :class:`~clusterlens.mock.simulator.MockLensSimulator`
    (it inherits them; they use its ``config``, ``population``, grids and lens maps)."""

    def _min_source_redshift(self, z_lens, s_min):
        """Lowest source redshift whose distance ratio reaches ``s_min`` of the reference."""
        zs, ratio, ratio_ref = self._ratio_table(z_lens)
        z_needed = float(np.interp(s_min, ratio, zs))
        return max(z_needed, z_lens + _MIN_SOURCE_BEHIND), ratio_ref

    def _ratio_table(self, z_lens):
        """``(z, D_ls/D_s over its z_ref value, D_ls/D_s at z_ref)`` on 256 source redshifts
        for a cluster at ``z_lens``; kept for the last cluster (every halo draw of a cluster
        asks for the same table)."""
        cached = self._last_ratio_table
        if cached is None or cached[0] != z_lens:
            zs = np.linspace(z_lens + 1e-3, self.z_ref, 256)
            ref = self._distance_ratio(z_lens, self.z_ref)
            cached = (z_lens, (zs, self._distance_ratio(z_lens, zs) / ref, float(ref)))
            self._last_ratio_table = cached
        return cached[1]

    def _sources(self, scene, maps, halo_params, s_min, rng, stats):
        cfg = self.config
        z_min, ratio_ref = self._min_source_redshift(scene.z_lens, s_min)
        if z_min >= self.z_ref - 1e-6:
            stats["halo_rejected"] += 1
            return None, "einstein_radius"
        reason = "placement"
        for _ in range(cfg.selection.max_source_draws):
            stats["source_draws"] += 1
            row = self._draw_source_row(rng, z_min)
            z_s = float(row["redshift"])
            s = float(self._distance_ratio(scene.z_lens, z_s)) / ratio_ref
            theta_e = maps.einstein_radius(s)
            if theta_e < cfg.selection.min_einstein_radius:  # interpolation edge: redraw
                continue
            centre = self._place(maps, s, theta_e, rng)
            if centre is None:
                stats["placement_failed"] += 1
                reason = "placement"
                continue
            (bx0, by0), mu_pix = centre
            source = self._make_source(row, bx0, by0)
            second = self._second_source(scene, maps, z_min, ratio_ref, rng)
            result = self._render(scene, maps, s, source, rng, extra=second)
            arc_noisy, arc_clean, raw_total = result
            # arc_snr and visible_pixels in one pass over the arc
            snr, visible = _snr_and_visible(
                arc_clean, self.scene_conditions(scene), cfg.selection.visible_pixel_sigma
            )
            snr_total = float(np.sqrt(np.sum(snr**2)))
            if snr_total < cfg.selection.min_arc_snr:
                stats["snr_rejected"] += 1
                reason = "arc_snr"
                continue
            n_visible = int(visible.max())
            if n_visible < cfg.selection.min_visible_pixels:
                stats["visibility_rejected"] += 1
                reason = "arc_visibility"
                continue
            draw = {
                "s": s,
                "z_s": z_s,
                "row": row,
                "source": source,
                "second": second,
                "arc_noisy": arc_noisy,
                "arc_clean": arc_clean,
                "raw_total": raw_total,
                "theta_e": theta_e,
                "mu_pix": mu_pix,
                "snr": snr,
                "snr_total": snr_total,
                "n_visible": n_visible,
            }
            return self._result(scene, maps, draw, halo_params), "accepted"
        return None, reason

    def _draw_source_row(self, rng, z_min):
        """One source of the population behind ``z_min``: ``draw_table(1, ...)[0]``, or the
        population's cheaper ``_draw_row`` (the same values) where it has one."""
        draw_row = getattr(self.population, "_draw_row", None)
        if draw_row is not None:
            return draw_row(rng, min_redshift=z_min)
        return self.population.draw_table(1, rng, min_redshift=z_min)[0]

    def _make_source(self, row, x, y):
        """The light profile of a drawn row at source-plane position ``(x, y)`` [arcsec]."""
        make = getattr(self.population, "make_source", None)
        if make is not None:
            return make(row, x=x, y=y)
        return Sersic.from_magnitudes(
            [row["mag_g"], row["mag_r"], row["mag_z"]],
            x=x,
            y=y,
            r_e=float(row["r_e"]),
            n=float(row["n"]),
            q=float(row["q"]),
            phi=float(row["phi"]),
        )

    def _second_source(self, scene, maps, z_min, ratio_ref, rng):
        """With ``source.second_source_probability``: ``{"row", "source", "s", "theta_e",
        "mu_pix"}`` of a second source at its own redshift (placed behind its own
        high-magnification region), else ``None``.  No random number is drawn when the
        probability is 0 (the paper preset)."""
        p = getattr(self.config.source, "second_source_probability", 0.0)
        if p <= 0.0 or rng.uniform() >= p:
            return None
        row = self._draw_source_row(rng, z_min)
        z2 = float(row["redshift"])
        s2 = float(self._distance_ratio(scene.z_lens, z2)) / ratio_ref
        theta_e2 = maps.einstein_radius(s2)
        if theta_e2 <= 0.0:
            return None
        centre = self._place(maps, s2, theta_e2, rng)
        if centre is None:
            return None
        (bx, by), mu = centre
        source = self._make_source(row, bx, by)
        return {"row": row, "source": source, "s": s2, "theta_e": theta_e2, "mu_pix": mu}

    def _place(self, maps: LensMaps, s: float, theta_e: float, rng):
        pcfg = self.config.placement
        m = self.margin
        # pixels of the crop with |mu| >= min_magnification on the tangential side within
        # max_radius Einstein radii (one pass, clusterlens.mock._kernels)
        idx, det, w = placement_candidates(
            maps.fxx, maps.fxy, maps.fyy, self._r, s, pcfg.min_magnification,
            pcfg.max_radius * theta_e, m, m + self.crop, pcfg.magnification_weight_cap,
        )  # fmt: skip
        if not idx.size:
            return None
        cap = pcfg.magnification_weight_cap
        if cap > 1.0:  # favour the pixels next to the critical curves
            pick = int(np.searchsorted(np.cumsum(w), rng.uniform(0.0, w.sum()), side="right"))
        else:
            pick = int(rng.integers(idx.size))
        k = int(idx[pick])
        det_k = float(det[pick])
        ax, ay = maps.deflection
        bx = self._x.flat[k] - s * ax.flat[k]
        by = self._y.flat[k] - s * ay.flat[k]
        mu = 1.0 / max(abs(det_k), 1e-12)
        # jitter within the pixel's source-plane footprint (pixel area / |mu|)
        half = 0.5 * self.conditions.pixel_scale / math.sqrt(mu)
        bx += rng.uniform(-half, half)
        by += rng.uniform(-half, half)
        return (float(bx), float(by)), float(mu)

    def _render_light(self, maps, s, source):
        """The lensed, noiseless, unconvolved light [nanomaggies] of one source at
        deflection scale ``s`` on the simulated box (body and clumps)."""
        from clusterlens.sources import render_sersic_adaptive

        ax, ay = maps.deflection
        icfg = self.config.image
        return render_sersic_adaptive(
            source,
            maps.ray_trace(s),
            shape=maps.shape,
            pixel_scale=self.conditions.pixel_scale,
            rtol=icfg.render_rtol,
            max_supersample=icfg.render_max_supersample,
            beta=(self._x - s * ax, self._y - s * ay),
        )

    def _render(self, scene, maps, s, source, rng, extra=None):
        arc = self._render_light(maps, s, source)
        raw_total = arc.sum(axis=(1, 2))  # the first source's lensed flux (magnification)
        if extra is not None:
            light2 = self._render_light(maps, extra["s"], extra["source"])
            extra["raw_total"] = light2.sum(axis=(1, 2))
            arc = arc + light2
        # the PSF sees the whole simulated box; only the kept pixels are convolved and noised
        cond = self.scene_conditions(scene)
        psfs = self._psfs if scene.conditions is None else cond.psfs
        clean = convolve(arc, psfs, pixel_scale=cond.pixel_scale, trim=self.margin)
        noisy = add_arc_noise(clean, cond, rng).astype(np.float32)
        return noisy, clean, raw_total

    def _result(self, scene, maps, draw: dict, halo_params: dict) -> MockResult:
        s, source, arc_clean = draw["s"], draw["source"], draw["arc_clean"]
        arc_noisy, snr, theta_e = draw["arc_noisy"], draw["snr"], draw["theta_e"]
        cutout = self.crop_cutout(scene.image)
        image = inject(cutout, arc_noisy)
        halo_s = maps.halo.scaled(s)
        members_s = maps.members.scaled(s)
        halo_params = dict(halo_params)
        for key in ("members_theta_e_max_zref", "bcg_theta_e_zref"):
            if key in halo_params:  # Einstein radii at the source's redshift
                halo_params[key.removesuffix("_zref")] = halo_params.pop(key) * s
        fluxes = np.asarray(source.fluxes)
        mags = source.magnitudes
        arc_flux = arc_clean.sum(axis=(1, 2))
        params = {
            "z_lens": scene.z_lens,
            "m500": scene.m500,
            "log_m500": math.log10(scene.m500),
            "n_members": scene.n_members,
            "members_log_mstar_total": float(np.log10(scene.stellar_mass.sum()))
            if scene.n_members
            else 0.0,
            **halo_params,
            "halo_rs": float(getattr(halo_s, "rs", math.nan)),
            "halo_alpha_rs": float(getattr(halo_s, "alpha_rs", math.nan)),
            "einstein_radius": theta_e,
            "einstein_radius_truncated": maps.truncated(s),
            "einstein_radius_zref": maps.einstein_radius(1.0),
            "z_ref": self.z_ref,
            "deflection_scale": s,
            "source_x": source.x,
            "source_y": source.y,
            "source_r_e": source.r_e,
            "source_n": source.n,
            "source_q": source.q,
            "source_phi": source.phi,
            **{f"source_mag_{b}": float(m) for b, m in zip(BANDS, mags, strict=True)},
            "source_redshift": draw["z_s"],
            "source_colour": str(draw["row"]["colour_class"]),
            **_source_row_params(draw["row"], source),
            **_second_source_params(draw.get("second")),
            "arc_visible_pixels": int(draw.get("n_visible", 0)),
            "magnification": float(draw["raw_total"].sum() / fluxes.sum()),
            "magnification_pixel": draw["mu_pix"],
            "arc_snr": draw["snr_total"],
            **{f"arc_snr_{b}": float(v) for b, v in zip(BANDS, snr, strict=True)},
            **{
                f"arc_mag_{b}": float(nanomaggies_to_mag(max(f, 1e-30)))
                for b, f in zip(BANDS, arc_flux, strict=True)
            },
            **_arc_measures(self, scene, arc_clean),
        }
        params.update(observation_params(self.scene_conditions(scene)))
        if scene.cluster_id is not None:
            params["cluster_id"] = str(scene.cluster_id)
        member_xy = np.stack([scene.x, scene.y], axis=1)
        return MockResult(
            image=image,
            arc=arc_clean.astype(np.float32),
            cutout=cutout,
            lens=halo_s + members_s,
            source=source,
            member_xy=member_xy,
            params=params,
            second_source=None if draw.get("second") is None else draw["second"]["source"],
        )


def visible_pixels(arc, conditions, k_sigma: float) -> int:
    """Pixels of the noiseless, PSF-convolved ``arc`` above ``k_sigma`` times their noise, in
    the band that has the most of them.

    A pixel's noise is ``sqrt(sigma_sky^2 + f / g)`` (the band's sky noise and the arc's own
    shot noise, :class:`~clusterlens.observe.SurveyConditions`), so the count says how many
    pixels of the arc stand out of the noise in at least one band.

    Parameters
    ----------
    arc : ndarray, ``(3, ny, nx)``
        Nanomaggies per pixel.
    conditions : SurveyConditions
    k_sigma : float
    """
    _, visible = _snr_and_visible(np.asarray(arc, dtype=np.float64), conditions, k_sigma)
    return int(visible.max())


def _row_value(row, name, default):
    try:
        return row[name]
    except (KeyError, ValueError, IndexError):
        return default


def _source_row_params(row, source) -> dict:
    """Source parameters beyond the body's Sérsic shape (SED, clumps) for the params table."""
    mags = source.magnitudes
    n_clumps = len(source.clumps) if isinstance(source, StructuredSource) else 0
    frac = float(source.clump_fraction[1]) if n_clumps else 0.0
    return {
        "source_g_minus_r": float(mags[0] - mags[1]),
        "source_r_minus_z": float(mags[1] - mags[2]),
        "source_uv_slope": float(_row_value(row, "uv_slope", np.nan)),
        "source_optical_slope": float(_row_value(row, "optical_slope", np.nan)),
        "source_balmer_break": float(_row_value(row, "balmer_break", np.nan)),
        "source_n_clumps": n_clumps,
        "source_clump_flux_fraction": frac,
    }


def _second_source_params(second) -> dict:
    """The second source's parameters (NaN / 0 without one: every mock has the columns)."""
    if second is None:
        return {
            "second_source": 0,
            "second_source_redshift": np.nan,
            "second_source_mag_r": np.nan,
            "second_source_x": np.nan,
            "second_source_y": np.nan,
            "second_source_n_clumps": 0,
            "second_source_magnification": np.nan,
            "second_source_deflection_scale": np.nan,
        }
    src = second["source"]
    return {
        "second_source": 1,
        "second_source_redshift": float(second["row"]["redshift"]),
        "second_source_mag_r": float(src.magnitudes[1]),
        "second_source_x": float(src.x),
        "second_source_y": float(src.y),
        "second_source_n_clumps": len(src.clumps) if isinstance(src, StructuredSource) else 0,
        "second_source_magnification": float(
            np.sum(second.get("raw_total", np.nan)) / np.sum(src.fluxes)
        ),
        "second_source_deflection_scale": float(second["s"]),
    }
