"""The mass-profile interface every lens model implements, and the sum of profiles.

Conventions (see the documentation's *Conventions* page): image-plane angles in arcsec,
``x`` along columns and ``y`` along rows, origin at the cutout centre; position angles in
degrees counter-clockwise from +x; all quantities are dimensionless lensing quantities
(convergence, shear) or angles in arcsec (deflection) and arcsec^2 (potential), for the
source redshift the profile was built for.

A profile is immutable.  Its public methods validate and broadcast their inputs and call the
private ``_method`` twins, which take flat, contiguous float64 arrays and assume them valid;
hot loops call the twins directly.
"""

from __future__ import annotations

import abc

import numpy as np

from clusterlens._registry import registrar
from clusterlens._validation import as_coordinates, as_value
from clusterlens.profiles import _kernels

__all__ = [
    "MassProfile",
    "Composite",
    "ScaledProfile",
    "ENTRY_POINT_GROUP",
    "register_profile",
    "get_profile",
    "available_profiles",
]


#: Units of the parameters profile constructors take (plain numbers are read in these units;
#: astropy Quantities are converted to them).  A missing name is dimensionless.
PARAMETER_UNITS = {
    "theta_e": "arcsec",
    "r_core": "arcsec",
    "r_cut": "arcsec",
    "rs": "arcsec",
    "alpha_rs": "arcsec",
    "x0": "arcsec",
    "y0": "arcsec",
    "phi": "deg",
}


def take_quantities(profile, names) -> None:
    """Replace the astropy Quantities among the ``names`` fields of a frozen profile by plain
    numbers in :data:`PARAMETER_UNITS` (a :class:`ParameterError` for an incompatible unit),
    so that the usual checks that follow see numbers."""
    owner = type(profile).__name__
    for key in names:
        unit = PARAMETER_UNITS.get(key, "")
        object.__setattr__(profile, key, as_value(getattr(profile, key), unit, key, owner))


class MassProfile(abc.ABC):
    """Base class of lens mass profiles.

    Subclasses implement ``_deflection`` and ``_hessian`` (and ``_potential`` and
    ``_convergence`` where they have closed forms) on flat float64 arrays in arcsec.
    Profiles add up: ``halo + members`` is a :class:`Composite`.
    """

    # --- public, validated API -------------------------------------------------------------
    def deflection(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """Deflection angle ``(alpha_x, alpha_y)`` in arcsec at image-plane positions (arcsec)."""
        xf, yf, shape = as_coordinates(x, y, type(self).__name__)
        ax, ay = self._deflection(xf, yf)
        return ax.reshape(shape), ay.reshape(shape)

    def hessian(self, x, y) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Second derivatives ``(f_xx, f_xy, f_yy)`` of the lensing potential (dimensionless)."""
        xf, yf, shape = as_coordinates(x, y, type(self).__name__)
        return tuple(h.reshape(shape) for h in self._hessian(xf, yf))

    def convergence(self, x, y) -> np.ndarray:
        """Convergence ``kappa`` (dimensionless) at image-plane positions (arcsec)."""
        xf, yf, shape = as_coordinates(x, y, type(self).__name__)
        return self._convergence(xf, yf).reshape(shape)

    def potential(self, x, y) -> np.ndarray:
        """Lensing potential ``psi`` in arcsec^2 at image-plane positions (arcsec)."""
        xf, yf, shape = as_coordinates(x, y, type(self).__name__)
        return self._potential(xf, yf).reshape(shape)

    # --- private twins: flat contiguous float64 arrays, no validation -----------------------
    @abc.abstractmethod
    def _deflection(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    @abc.abstractmethod
    def _hessian(
        self, x: np.ndarray, y: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...

    def _convergence(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        fxx, _, fyy = self._hessian(x, y)
        return 0.5 * (fxx + fyy)

    def _potential(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not implement a lensing potential")

    # --- rescaling ----------------------------------------------------------------------------
    def scaled(self, factor: float) -> MassProfile:
        """A profile whose every lensing quantity (deflection, Hessian, convergence,
        potential) is this one's times ``factor`` >= 0.

        All the mass of a lens at one redshift scales with the source redshift only through
        ``D_ds / D_s``, so the lens for another source is ``lens.scaled(ratio)``; the mass
        budget scales a halo's normalisation the same way.  The built-in profiles return
        the same class with its amplitude rescaled (so sums stay fused kernels); this
        default wraps any other profile.
        """
        from clusterlens._validation import check_scalar

        f = check_scalar(factor, "factor", f"{type(self).__name__}.scaled", low=0.0)
        return ScaledProfile(self, f)

    # --- algebra ----------------------------------------------------------------------------
    def __add__(self, other):
        if not isinstance(other, MassProfile):
            return NotImplemented
        return Composite((self, other))

    def __radd__(self, other):
        # lets ``sum(profiles)`` work: sum starts from the integer 0
        if isinstance(other, int) and other == 0:
            return self
        return NotImplemented


class ScaledProfile(MassProfile):
    """``factor`` times ``profile`` (what :meth:`MassProfile.scaled` returns for profiles
    without an amplitude of their own to rescale)."""

    def __init__(self, profile: MassProfile, factor: float):
        if isinstance(profile, ScaledProfile):
            profile, factor = profile.profile, profile.factor * factor
        object.__setattr__(self, "profile", profile)
        object.__setattr__(self, "factor", float(factor))

    def __setattr__(self, name, value):
        raise AttributeError("ScaledProfile is immutable")

    def __repr__(self) -> str:
        return f"ScaledProfile({self.profile!r}, {self.factor!r})"

    def __getattr__(self, name):
        # parameters (x0, y0, q, ...) of the wrapped profile stay readable
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.profile, name)

    def scaled(self, factor: float) -> MassProfile:
        from clusterlens._validation import check_scalar

        f = check_scalar(factor, "factor", "ScaledProfile.scaled", low=0.0)
        return ScaledProfile(self.profile, self.factor * f)

    def _deflection(self, x, y):
        ax, ay = self.profile._deflection(x, y)
        return ax * self.factor, ay * self.factor

    def _hessian(self, x, y):
        return tuple(h * self.factor for h in self.profile._hessian(x, y))

    def _convergence(self, x, y):
        return self.profile._convergence(x, y) * self.factor

    def _potential(self, x, y):
        return self.profile._potential(x, y) * self.factor


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
    zero-initialised output arrays (the built-in analytic profiles).

    It lives beside :class:`Composite`, whose sums of kernel profiles add every part into
    one set of outputs (``_fused``).
    """

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


class Composite(MassProfile):
    """The sum of several mass profiles; every lensing quantity is the sum of the parts'.

    Nested composites are flattened, so ``(a + b) + c`` has the three parts ``a, b, c``.
    """

    def __init__(self, components):
        parts: list[MassProfile] = []
        for c in components:
            if isinstance(c, Composite):
                parts.extend(c.components)
            elif isinstance(c, MassProfile):
                parts.append(c)
            else:
                from clusterlens.errors import ParameterError

                raise ParameterError(
                    "The 'components' parameter of Composite must hold MassProfile instances. "
                    f"Got {type(c).__name__} instead."
                )
        if not parts:
            from clusterlens.errors import ParameterError

            raise ParameterError("The 'components' parameter of Composite must not be empty.")
        object.__setattr__(self, "components", tuple(parts))

    def __setattr__(self, name, value):
        raise AttributeError("Composite is immutable")

    def __repr__(self) -> str:
        inner = ", ".join(repr(c) for c in self.components)
        return f"Composite(({inner}))"

    def __len__(self) -> int:
        return len(self.components)

    def __iter__(self):
        return iter(self.components)

    def scaled(self, factor: float) -> Composite:
        """Every part scaled by ``factor`` (see :meth:`MassProfile.scaled`)."""
        return Composite(tuple(c.scaled(factor) for c in self.components))

    def _sum(self, method: str, x, y):
        total = None
        for c in self.components:
            part = getattr(c, method)(x, y)
            if total is None:
                total = (
                    [np.array(p, dtype=np.float64, copy=True) for p in part]
                    if isinstance(part, tuple)
                    else np.array(part, dtype=np.float64, copy=True)
                )
            elif isinstance(part, tuple):
                for t, p in zip(total, part, strict=True):
                    t += p
            else:
                total += part
        return tuple(total) if isinstance(total, list) else total

    def _fused(self, mode: int, nout: int, x, y):
        """Every part's kernel adds into one set of outputs (no per-part arrays to sum) when
        all parts are kernel profiles; ``None`` otherwise."""
        if not all(isinstance(c, KernelProfile) for c in self.components):
            return None
        return run_kernels(self.components, mode, x, y, nout)

    def _deflection(self, x, y):
        outs = self._fused(_kernels.DEFLECTION, 2, x, y)
        return tuple(outs) if outs is not None else self._sum("_deflection", x, y)

    def _hessian(self, x, y):
        outs = self._fused(_kernels.HESSIAN, 3, x, y)
        return tuple(outs) if outs is not None else self._sum("_hessian", x, y)

    def _convergence(self, x, y):
        outs = self._fused(_kernels.CONVERGENCE, 1, x, y)
        return outs[0] if outs is not None else self._sum("_convergence", x, y)

    def _potential(self, x, y):
        outs = self._fused(_kernels.POTENTIAL, 1, x, y)
        return outs[0] if outs is not None else self._sum("_potential", x, y)


# --- registry ---------------------------------------------------------------------------------

#: Entry-point group through which other packages add profiles.
ENTRY_POINT_GROUP = "clusterlens.profiles"

_REGISTRY: dict[str, type[MassProfile]] = {}
_ENTRY_POINTS_LOADED = False
# the check is looked up when called: it is defined below
_register_profile = registrar(
    lambda: _REGISTRY, "profile", lambda obj: _check_profile_class(obj), "register_profile"
)


def _check_profile_class(obj) -> None:
    from clusterlens.errors import ParameterError

    if not (isinstance(obj, type) and issubclass(obj, MassProfile)):
        raise ParameterError(
            "The 'cls' parameter of register_profile must be a MassProfile subclass. "
            f"Got {obj!r} instead."
        )


def register_profile(target=None, profile=None, *, name: str | None = None, overwrite=False):
    """Register a :class:`MassProfile` subclass under ``name`` (default: its class name).

    The same forms as :func:`clusterlens.nets.register_network`: a decorator
    (``@register_profile``, ``@register_profile("x")`` or ``@register_profile(name="x")``)
    or a call (``register_profile(MyProfile)``, ``register_profile("x", MyProfile)``).
    Registering another class under a taken name raises
    :class:`~clusterlens.errors.ParameterError` unless ``overwrite=True``.
    """
    return _register_profile(target, profile, name=name, overwrite=overwrite)


def _load_entry_points() -> None:
    """Import the profiles other packages declare in the ``clusterlens.profiles`` group."""
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _REGISTRY:
            continue
        register_profile(ep.load(), name=ep.name)


def get_profile(name: str) -> type[MassProfile]:
    """The profile class registered as ``name`` (built-in or from an entry point)."""
    import clusterlens.profiles  # noqa: F401  (registers the built-in profiles)
    from clusterlens.errors import ParameterError

    if name not in _REGISTRY:
        _load_entry_points()
    if name not in _REGISTRY:
        raise ParameterError(
            f"The 'name' parameter of get_profile must be one of {available_profiles()}. "
            f"Got {name!r} instead."
        )
    return _REGISTRY[name]


def available_profiles() -> list[str]:
    """Names of every registered profile, entry points included, sorted."""
    import clusterlens.profiles  # noqa: F401

    _load_entry_points()
    return sorted(_REGISTRY)
