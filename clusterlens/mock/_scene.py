"""The simulator's value objects: the cluster to lens, the accepted mock, the rejection.

Private module of :mod:`clusterlens.mock.simulator`, which is where these names are public
(import them from there or from :mod:`clusterlens.mock`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from clusterlens._validation import check_scalar
from clusterlens.errors import ClusterlensError, ParameterError
from clusterlens.observe import SurveyConditions
from clusterlens.profiles.base import MassProfile
from clusterlens.sources import BANDS, Sersic, StructuredSource

_MEMBER_COLUMNS = ("x", "y", "stellar_mass", "q", "phi")


def observation_params(conditions: SurveyConditions) -> dict:
    """A field's observing conditions as flat params: ``psf_fwhm_g/r/z`` [arcsec],
    ``psf_beta`` (NaN for Gaussian PSFs) and ``depth_g/r/z`` [AB]."""
    out = {f"psf_fwhm_{b}": float(f) for b, f in zip(BANDS, conditions.psf_fwhm, strict=True)}
    out["psf_beta"] = float(conditions.beta)
    out.update({f"depth_{b}": float(d) for b, d in zip(BANDS, conditions.depth, strict=True)})
    return out


class LensRejected(ClusterlensError):
    """No accepted mock could be made from this cluster within the configured draws.

    Attributes
    ----------
    reason : str
        ``"einstein_radius"`` (the lens never reaches the minimum), ``"placement"`` (no
        high-magnification pixel in the crop) or ``"arc_snr"`` (arcs too faint).
    """

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason

    def __reduce__(self):
        # pickled with its reason (Dask sends a worker's exceptions back to the client)
        return (type(self), (str(self), self.reason))


@dataclass(frozen=True)
class ClusterScene:
    """One cluster to lens: its cutout and the inputs of its mass model.

    Parameters
    ----------
    image : array_like, shape ``(3, N, N)``
        The cluster cutout [nanomaggies], bands g, r, z, centred on the BCG (the lens
        centre), ``x`` with the column and ``y`` with the row index.
    z_lens : float
        Cluster (BCG) redshift.
    m500 : float
        M500c [Msun, no h].
    x, y : array_like
        Member positions [arcsec] relative to the cutout centre.
    stellar_mass : array_like
        Member stellar masses [Msun].
    q, phi : array_like
        Member axis ratios in (0, 1] and position angles [deg, CCW from +x].
    cluster_id : int or str, optional
    conditions : SurveyConditions, optional
        This field's PSFs and depth (drawn per field by the synthetic sky, measured or read
        from the catalog for a real cutout); the arc is convolved, given shot noise and
        S/N-tested with them.  ``None``: the simulator's nominal conditions
        (``config.observation.nominal``).
    is_bcg : array_like of bool, optional
        Flags the BCG among the members (for ``[bcg]``); ``None``: the simulator takes the
        most massive member within ``bcg.max_offset`` of the centre.
    """

    image: np.ndarray
    z_lens: float
    m500: float
    x: np.ndarray
    y: np.ndarray
    stellar_mass: np.ndarray
    q: np.ndarray
    phi: np.ndarray
    cluster_id: object = None
    conditions: SurveyConditions | None = None
    is_bcg: np.ndarray | None = None

    def __post_init__(self):
        o, s = "ClusterScene", object.__setattr__
        if self.conditions is not None and not isinstance(self.conditions, SurveyConditions):
            raise ParameterError(
                f"The 'conditions' parameter of {o} must be a SurveyConditions or None. "
                f"Got {type(self.conditions).__name__} instead."
            )
        try:
            img = np.asarray(self.image, dtype=np.float32)
        except (TypeError, ValueError):
            raise ParameterError(f"The 'image' parameter of {o} must be a numeric array.") from None
        if img.ndim != 3 or img.shape[0] != 3:
            raise ParameterError(
                f"The 'image' parameter of {o} must have shape (3, N, N) (bands g, r, z). "
                f"Got shape {img.shape} instead (wrong band count or dimensions)."
            )
        if img.shape[1] != img.shape[2]:
            raise ParameterError(
                f"The 'image' parameter of {o} must be square (3, N, N). Got {img.shape}."
            )
        s(self, "image", img)
        s(self, "z_lens", check_scalar(self.z_lens, "z_lens", o, low=0.0, low_inclusive=False))
        s(self, "m500", check_scalar(self.m500, "m500", o, low=1e10, high=1e17))
        arrays = {}
        for name in _MEMBER_COLUMNS:
            a = np.atleast_1d(np.asarray(getattr(self, name), dtype=np.float64))
            bad = np.flatnonzero(~np.isfinite(a))
            if bad.size:
                raise ParameterError(
                    f"The member column {name!r} of {o} holds NaN/inf at row {int(bad[0])} "
                    f"({bad.size} bad rows). Clean the member table first."
                )
            arrays[name] = a
        n = {a.size for a in arrays.values()}
        if len(n) != 1:
            sizes = {k: v.size for k, v in arrays.items()}
            raise ParameterError(f"The member columns of {o} must have one length. Got {sizes}.")
        if (arrays["stellar_mass"] <= 0).any():
            row = int(np.flatnonzero(arrays["stellar_mass"] <= 0)[0])
            raise ParameterError(
                f"The member column 'stellar_mass' of {o} must be > 0 Msun. Row {row} is "
                f"{arrays['stellar_mass'][row]}."
            )
        bad_q = (arrays["q"] <= 0) | (arrays["q"] > 1)
        if bad_q.any():
            row = int(np.flatnonzero(bad_q)[0])
            raise ParameterError(
                f"The member column 'q' of {o} must be in (0, 1]. Row {row} is {arrays['q'][row]}."
            )
        for k, v in arrays.items():
            s(self, k, v)
        if self.is_bcg is not None:
            flags = np.atleast_1d(np.asarray(self.is_bcg, dtype=bool))
            if flags.shape != arrays["x"].shape:
                raise ParameterError(
                    f"The 'is_bcg' parameter of {o} must have one flag per member "
                    f"({arrays['x'].size}). Got shape {flags.shape} instead."
                )
            s(self, "is_bcg", flags)

    @classmethod
    def from_inputs(cls, inputs, image, *, m500=None, conditions=None, is_bcg=None) -> ClusterScene:
        """The scene of a catalogue cluster: its mass-model inputs (a
        :class:`clusterlens.survey.ClusterInputs`, from
        :func:`clusterlens.survey.cluster_inputs`) and its cutout ``image``.

        The cluster's redshift, members and id are taken from ``inputs`` as they are, so a
        catalogue row has one description from the catalogue to the simulator; ``m500``
        [Msun] overrides the catalogue's (``inputs.m500``), ``conditions`` and ``is_bcg`` are
        as in the constructor.
        """
        mass = inputs.m500 if m500 is None else m500
        return cls(
            image,
            inputs.z_lens,
            mass,
            inputs.x,
            inputs.y,
            inputs.stellar_mass,
            inputs.q,
            inputs.phi,
            cluster_id=inputs.cluster_id,
            conditions=conditions,
            is_bcg=is_bcg,
        )

    @property
    def n_members(self) -> int:
        return int(self.x.size)

    @classmethod
    def from_members_table(cls, image, members, *, z_lens, m500, cluster_id=None, conditions=None):
        """From a member Table with columns ``x, y, stellar_mass, q, phi`` and optionally
        ``is_bcg`` (e.g.
        :attr:`clusterlens.fields.SyntheticField.members` or
        :meth:`clusterlens.survey.ClusterInputs.members_table`)."""
        missing = [c for c in _MEMBER_COLUMNS if c not in members.colnames]
        if missing:
            raise ParameterError(
                f"The member table lacks the column(s) {missing}; it needs {_MEMBER_COLUMNS}."
            )
        cols = {
            c: np.asarray(getattr(members[c], "value", members[c]), float) for c in _MEMBER_COLUMNS
        }
        is_bcg = np.asarray(members["is_bcg"], bool) if "is_bcg" in members.colnames else None
        return cls(
            image, z_lens, m500, cluster_id=cluster_id, conditions=conditions, is_bcg=is_bcg, **cols
        )


@dataclass(frozen=True)
class MockResult:
    """One accepted mock lens.

    Attributes
    ----------
    image : ndarray, float32, ``(3, crop, crop)``
        The cluster's cropped cutout plus the observed arc [nanomaggies].
    arc : ndarray, float32, ``(3, crop, crop)``
        The noiseless, PSF-convolved arc [nanomaggies].
    cutout : ndarray, float32, ``(3, crop, crop)``
        The cropped cutout without the arc.
    lens : MassProfile
        Halo + members scaled to the source redshift.
    source : Sersic or StructuredSource
        The source (source-plane position in arcsec); a StructuredSource when it has clumps.
    member_xy : ndarray, ``(n_members, 2)``
        Member positions [arcsec] (for Figure 1's crosses).
    params : dict
        Every parameter as a flat dict of scalars (see ``docs/mock.md``).
    second_source : Sersic or StructuredSource or None
        A second source at another redshift (``params["second_source_redshift"]``) whose
        images are part of ``arc``; ``lens`` is scaled to the first source only.
    """

    image: np.ndarray
    arc: np.ndarray
    cutout: np.ndarray
    lens: MassProfile
    source: Sersic | StructuredSource
    member_xy: np.ndarray
    params: dict = field(default_factory=dict)
    second_source: Sersic | StructuredSource | None = None
