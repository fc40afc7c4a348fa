"""Private helper of the member populations (``SIEPopulation``, ``DPIEPopulation``)."""

from __future__ import annotations

import numpy as np

from clusterlens.errors import ParameterError

__all__: list[str] = []


def set_member_arrays(profile, values: dict) -> None:
    """Store a population's per-member parameters on the frozen ``profile``: each a scalar or
    a 1-d array (named in the error otherwise), all broadcast to one length, read-only."""
    name = type(profile).__name__
    for key, arr in values.items():
        if arr.ndim > 1:
            raise ParameterError(
                f"The {key!r} parameter of {name} must be a scalar or 1-dimensional array. "
                f"Got shape {arr.shape} instead."
            )
    sizes = {a.size for a in values.values() if a.ndim == 1}
    if len(sizes) > 1:
        shapes = ", ".join(f"{k}={v.shape}" for k, v in values.items())
        raise ParameterError(
            f"The parameters of {name} must have matching shapes. Got {shapes} instead."
        )
    size = sizes.pop() if sizes else 1
    for key, arr in values.items():
        arr = np.broadcast_to(arr, (size,)).copy()
        arr.flags.writeable = False
        object.__setattr__(profile, key, arr)
