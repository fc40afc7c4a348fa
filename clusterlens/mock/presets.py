"""Named configurations of the mock simulator: ``realistic`` (the default) and ``paper``.

The dataclass defaults of :class:`~clusterlens.mock.MockConfig` are the realistic model.  A
preset is a nested dict of overrides in the TOML layout (``{table: {key: value}}``) applied on
top of those defaults by :func:`preset_config`, or chosen in a configuration file with a
top-level ``preset = "paper"`` key (the file's own tables then override the preset).

``paper`` reproduces Table 1 of Zhang et al. exactly: SIE members on top of the full-M500
halo, z_s a truncated normal (1.0, 0.35) on 0.034-1.495, single Sérsic sources, one Gaussian
PSF per band and a uniform depth.  Every table's block below is owned by the module that
defines that table.
"""

from __future__ import annotations

import copy

from clusterlens.errors import ParameterError

__all__ = ["PRESETS", "preset_overrides"]

# --- [halo], [members], [bcg]: the mass model -----------------------------------------------
# Table 1: an eNFW holding the whole M500 plus untruncated SIE members (the BCG one of them).
_PAPER_MASS: dict = {
    "halo": {"profile": "enfw", "mass_budget": False},
    "members": {"profile": "sie"},
    "bcg": {"enabled": False},
}

# --- [source]: the source population ---------------------------------------------------------
# Table 1 and section 2.2: single Sersic sources, z_s in Table 1's 0.034-1.495 (the shape of
# its Figure 2 approximated by a truncated normal), sizes not tied to redshift, the 1:1:2
# red / green / blue colour classes, one source per lens.  Same seed -> the same table as
# before the realistic population existed.
_PAPER_SOURCE: dict = {
    "source": {
        "redshift": {"kind": "normal", "mean": 1.0, "sigma": 0.35, "low": 0.034, "high": 1.495},
        "colour_model": "classes",
        "size_model": "distribution",
        "clump_probability": [0.0, 0.0],
        "second_source_probability": 0.0,
    }
}

# --- [observation]: PSFs, depth, noise --------------------------------------------------------
# the paper: one Gaussian PSF per band (FWHM 1.3, 1.2, 1.1") and the DESI target depths
# 24.0, 23.4, 22.5 for every field, as before per-field conditions
_PAPER_OBSERVATION: dict = {"observation": {"survey": "fixed", "psf_model": "gaussian"}}

# --- [sky]: the synthetic cluster fields and confusers ---------------------------------------
# The paper drew no synthetic fields (its clusters are DESI cutouts): ``paper`` keeps this
# library's earlier plain field, with no ICL, no blue members and no confusers.
_PAPER_SKY: dict = {
    "sky": {
        "bcg_log_mstar_scatter": 0.12,
        "bcg_size_relation": "shen2003",
        "bcg_sersic_n_mean": 5.0,
        "bcg_sersic_n_sigma": 0.8,
        "bcg_sersic_n_range": [3.5, 8.0],
        "icl_fraction_range": [0.0, 0.0],
        "blue_fraction_core": 0.0,
        "blue_fraction_dz": 0.0,
        "blue_fraction_radial": 0.0,
        "confuser_rate": 0.0,
        "hard_negative_fraction": 0.0,
    }
}

# --- [selection], [placement], [image]: what counts as a lens --------------------------------
# The paper keeps arcs by the Einstein radius and (here) the matched-filter S/N only.
_PAPER_SELECTION: dict = {"selection": {"min_visible_pixels": 0}}


def _merge(*parts: dict) -> dict:
    out: dict = {}
    for part in parts:
        for table, keys in part.items():
            out.setdefault(table, {}).update(copy.deepcopy(keys))
    return out


PRESETS: dict[str, dict] = {
    "realistic": {},
    "paper": _merge(_PAPER_MASS, _PAPER_SOURCE, _PAPER_OBSERVATION, _PAPER_SKY, _PAPER_SELECTION),
}


def preset_overrides(name: str) -> dict:
    """The overrides of preset ``name`` as nested dicts (a deep copy)."""
    if name not in PRESETS:
        raise ParameterError(
            f"The 'preset' parameter must be one of {sorted(PRESETS)}. Got {name!r} instead."
        )
    return copy.deepcopy(PRESETS[name])
