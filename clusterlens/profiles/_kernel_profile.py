"""Private base of the profiles whose lensing quantities come from one numba kernel."""

from __future__ import annotations

import numpy as np

from clusterlens.errors import ParameterError
from clusterlens.profiles import _kernels
from clusterlens.profiles.base import MassProfile

__all__: list[str] = []


def run_kernels(profiles, mode, x, y, nout: int) -> list[np.ndarray]:
    """``nout`` zero-initialised outputs into which every profile's kernel adds ``mode``: a
    sum of kernel profiles (``halo + members``) needs no per-part arrays to add up."""
    outs = [np.zeros_like(x) for _ in range(nout)]
    o1, o2, o3 = (outs + [outs[0]] * 3)[:3]
    for profile in profiles:
        profile._accumulate(mode, x, y, o1, o2, o3)
    return outs


class KernelProfile(MassProfile):
    """A profile computed by ``_accumulate(mode, x, y, o1, o2, o3)``, which adds the quantity
    ``mode`` (``_kernels.DEFLECTION``, ``HESSIAN``, ``POTENTIAL`` or ``CONVERGENCE``) into
    zero-initialised output arrays."""

    def _accumulate(self, mode, x, y, o1, o2, o3) -> None:
        raise NotImplementedError

    def _run(self, mode, x, y, nout):
        return run_kernels((self,), mode, x, y, nout)

    def _deflection(self, x, y):
        return tuple(self._run(_kernels.DEFLECTION, x, y, 2))

    def _hessian(self, x, y):
        return tuple(self._run(_kernels.HESSIAN, x, y, 3))

    def _convergence(self, x, y):
        return self._run(_kernels.CONVERGENCE, x, y, 1)[0]

    def _potential(self, x, y):
        return self._run(_kernels.POTENTIAL, x, y, 1)[0]


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
