"""Private base of the profiles whose lensing quantities come from one numba kernel."""

from __future__ import annotations

import numpy as np

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
