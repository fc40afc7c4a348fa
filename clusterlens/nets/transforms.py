"""Input transforms: from survey fluxes to the numbers a network sees.

Survey pixels span orders of magnitude: sky noise of ~0.01 nanomaggies around arcs of ~0.1
and cluster galaxies of 1-100.  A network trains poorly on such raw values, and scoring with
another stretch than the one used in training silently ruins its scores.  So the stretch is
one small, versioned object saved inside every checkpoint (:meth:`InputTransform.to_dict`)
and rebuilt from it (:func:`transform_from_dict`) by whoever scores with the model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from clusterlens._validation import check_scalar
from clusterlens.errors import ParameterError

__all__ = ["AsinhStretch", "InputTransform", "transform_from_dict"]

#: Approximate 1-sigma per-pixel sky noise (nanomaggies) of the Legacy Surveys at their
#: 5-sigma depth targets g = 24.0, r = 23.4, z = 22.5 (0.45" galaxy): the 5-sigma flux
#: 10^((22.5 - m) / 2.5) spread over a noise-equivalent area of about 65 pixels of 0.262".
LEGACY_SURVEYS_NOISE = (0.006, 0.011, 0.025)


class InputTransform:
    """Base class of input transforms: a callable on (batch, band, y, x) tensors."""

    name = ""
    version = 0

    def __call__(self, images: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def to_dict(self) -> dict:
        """A JSON-serialisable description that :func:`transform_from_dict` rebuilds."""
        return {"name": self.name, "version": self.version, **asdict(self)}


@dataclass(frozen=True)
class AsinhStretch(InputTransform):
    """Per-band arcsinh stretch (Lupton et al. 1999), version 1.

    .. math:: y_b = \\operatorname{asinh}(x_b / s_b) / d

    linear for fluxes below the softening ``s_b`` (noise and faint arcs keep their shape and
    sign) and logarithmic above it (bright cluster galaxies are compressed instead of
    dominating).  With the default scales, sky noise maps to about +-1/d and a 10 nanomaggy
    galaxy core to about 7.5/d.

    Parameters
    ----------
    scales : tuple of float
        Softening ``s_b`` per band in nanomaggies; default: about the per-pixel sky noise of
        the Legacy Surveys in g, r, z (0.006, 0.011, 0.025).
    divisor : float
        ``d``, which brings the output to order unity (default 3).
    """

    scales: tuple = LEGACY_SURVEYS_NOISE
    divisor: float = 3.0
    name = "asinh"
    version = 1

    def __post_init__(self):
        scales = tuple(
            check_scalar(s, "scales", "AsinhStretch", low=0, low_inclusive=False)
            for s in self.scales
        )
        object.__setattr__(self, "scales", scales)
        check_scalar(self.divisor, "divisor", "AsinhStretch", low=0, low_inclusive=False)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-3] != len(self.scales):
            raise ParameterError(
                f"AsinhStretch has scales for {len(self.scales)} bands but the images have "
                f"{images.shape[-3]} (shape {tuple(images.shape)})."
            )
        scales = torch.tensor(self.scales, dtype=images.dtype, device=images.device)
        return torch.asinh(images / scales[:, None, None]) * (1.0 / self.divisor)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "scales": list(self.scales),
            "divisor": self.divisor,
        }


_TRANSFORMS = {("asinh", 1): AsinhStretch}


def transform_from_dict(spec: dict) -> InputTransform:
    """Rebuild a transform saved with :meth:`InputTransform.to_dict`."""
    try:
        cls = _TRANSFORMS[(spec["name"], spec["version"])]
    except (KeyError, TypeError) as exc:
        known = ", ".join(f"{n} v{v}" for n, v in _TRANSFORMS)
        raise ParameterError(
            f"Unknown input transform {spec!r}; this clusterlens knows {known}."
        ) from exc
    kwargs = {k: v for k, v in spec.items() if k not in ("name", "version")}
    if "scales" in kwargs:
        kwargs["scales"] = tuple(kwargs["scales"])
    return cls(**kwargs)
