"""Small analytic test lenses (axially symmetric) defined only for the lensing tests.

For an axially symmetric lens with convergence kappa(r) and mean convergence inside r,
kbar(r) = alpha(r) / r, the deflection is kbar (x, y) and the shear is gamma = kbar - kappa,
so f_xx = kappa + gamma cos 2phi, f_yy = kappa - gamma cos 2phi, f_xy = gamma sin 2phi.
"""

import numpy as np

from clusterlens.profiles.base import MassProfile


class Axisymmetric(MassProfile):
    def __init__(self, theta_e, x0=0.0, y0=0.0):
        self.theta_e, self.x0, self.y0 = float(theta_e), float(x0), float(y0)

    def _deflection(self, x, y):
        dx, dy = x - self.x0, y - self.y0
        kb = self._kbar(np.maximum(np.hypot(dx, dy), 1e-12))
        return kb * dx, kb * dy

    def _hessian(self, x, y):
        dx, dy = x - self.x0, y - self.y0
        r2 = dx * dx + dy * dy
        r = np.maximum(np.sqrt(r2), 1e-12)  # finite (if huge) at a singular centre
        kappa, kbar = self._kappa(r), self._kbar(r)
        gamma = kbar - kappa
        safe = np.where(r2 > 0, r2, 1.0)  # the shear vanishes at the centre anyway
        c2, s2 = (dx * dx - dy * dy) / safe, 2 * dx * dy / safe
        return kappa + gamma * c2, gamma * s2, kappa - gamma * c2


class SIS(Axisymmetric):
    """Singular isothermal sphere: kappa = theta_E / (2 r)."""

    def _kappa(self, r):
        return 0.5 * self.theta_e / r

    def _kbar(self, r):
        return self.theta_e / r


class CoredIsothermal(Axisymmetric):
    """Non-singular isothermal sphere, kappa = theta_E / (2 sqrt(r^2 + rc^2)): it has a
    radial critical curve inside its tangential one when rc is small."""

    def __init__(self, theta_e, rc, x0=0.0, y0=0.0):
        super().__init__(theta_e, x0, y0)
        self.rc = float(rc)

    def _kappa(self, r):
        return 0.5 * self.theta_e / np.sqrt(r * r + self.rc**2)

    def _kbar(self, r):
        # (sqrt(r^2 + rc^2) - rc) / r^2 without cancellation, finite at r = 0
        return self.theta_e / (np.sqrt(r * r + self.rc**2) + self.rc)

    def tangential_radius(self):
        # 1 - kbar = 0:  sqrt(r^2 + rc^2) - rc = r^2 / theta_E
        t, rc = self.theta_e, self.rc
        return np.sqrt(t * t - 2 * t * rc)

    def radial_radius(self):
        from scipy.optimize import brentq

        f = lambda r: 1 - 2 * self._kappa(r) + self._kbar(r)  # noqa: E731
        return brentq(f, 1e-9, self.tangential_radius())


class LenstronomyLens(MassProfile):
    """A lenstronomy ``LensModel`` seen through the MassProfile interface (test oracle only):
    it lets the tracing algorithm be compared with lenstronomy's on identical physics."""

    def __init__(self, models, kwargs):
        from lenstronomy.LensModel.lens_model import LensModel

        self.model = LensModel(list(models))
        self.kwargs = [dict(k) for k in kwargs]

    def _deflection(self, x, y):
        return self.model.alpha(x, y, self.kwargs)

    def _hessian(self, x, y):
        fxx, fxy, _, fyy = self.model.hessian(x, y, self.kwargs)
        return fxx, fxy, fyy
