"""Input validation shared by every public class.

Public constructors and methods check their inputs here and raise
:class:`~clusterlens.errors.ParameterError` with messages in one style; private ``_methods``
and numba kernels assume valid inputs.
"""

from __future__ import annotations

import math
import sys
from numbers import Integral, Real

import numpy as np

from clusterlens.errors import ParameterError

__all__ = ["check_int", "check_scalar", "check_array", "as_coordinates", "describe_range"]


def describe_range(low, high, low_inclusive=True, high_inclusive=True) -> str:
    """Text like ``the range (0, 1]`` for an interval; ``None`` bounds are infinite."""
    if low is None and high is None:
        return "any finite value"
    left = ("[" if low_inclusive else "(") if low is not None else "("
    right = ("]" if high_inclusive else ")") if high is not None else ")"
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    return f"the range {left}{lo}, {hi}{right}"


def _in_range(v, low, high, low_inclusive, high_inclusive):
    if low is not None and (v < low or (v == low and not low_inclusive)):
        return False
    if high is not None and (v > high or (v == high and not high_inclusive)):
        return False
    return True


def check_scalar(
    value,
    name: str,
    owner: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Return ``value`` as a finite float inside the given interval, or raise.

    Parameters
    ----------
    value : real number
        The value to check.
    name, owner : str
        The parameter's name and the class or function it belongs to, used in the message.
    low, high : float or None
        Interval bounds; ``None`` means unbounded on that side.
    low_inclusive, high_inclusive : bool
        Whether each bound belongs to the interval.
    """
    where = describe_range(low, high, low_inclusive, high_inclusive)
    if isinstance(value, bool) or not isinstance(value, Real | np.number):
        raise ParameterError(
            f"The {name!r} parameter of {owner} must be a float in {where}. "
            f"Got {value!r} of type {type(value).__name__} instead."
        )
    v = float(value)
    if not math.isfinite(v) or not _in_range(v, low, high, low_inclusive, high_inclusive):
        raise ParameterError(
            f"The {name!r} parameter of {owner} must be a float in {where}. Got {v!r} instead."
        )
    return v


def check_int(
    value,
    name: str,
    owner: str,
    *,
    low: int | None = None,
    high: int | None = None,
    allow_none: bool = False,
) -> int | None:
    """Return ``value`` as a Python ``int`` inside ``[low, high]``, or raise.

    Python and numpy integers are accepted (numpy's become Python ints, so that the value
    goes into JSON); bools, floats (even ``3.0``) and text are refused.

    Parameters
    ----------
    value : int
        The value to check.
    name, owner : str
        The parameter's name and the class or function it belongs to, used in the message.
    low, high : int or None
        Inclusive bounds; ``None`` means unbounded on that side.
    allow_none : bool
        Accept (and return) ``None``, for an option that is off or automatic when unset.

    Raises
    ------
    ParameterError
        ``The 'k' parameter of f must be an integer >= 1. Got 0 instead.``
    """
    if value is None and allow_none:
        return None
    if low is not None and high is not None:
        where = f" in [{low}, {high}]"
    elif low is not None:
        where = f" >= {low}"
    elif high is not None:
        where = f" <= {high}"
    else:
        where = ""
    expected = f"The {name!r} parameter of {owner} must be an integer{where}"
    if allow_none:
        expected += " or None"
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ParameterError(f"{expected}. Got {value!r} of type {type(value).__name__} instead.")
    v = int(value)
    if (low is not None and v < low) or (high is not None and v > high):
        raise ParameterError(f"{expected}. Got {v!r} instead.")
    return v


def check_array(
    value,
    name: str,
    owner: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    ndim: int | None = None,
    dtype=np.float64,
) -> np.ndarray:
    """Return ``value`` as a finite array (default float64) inside an interval, or raise.

    The message names the first offending element by index and value.
    """
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ParameterError(
            f"The {name!r} parameter of {owner} must be an array of numbers. Got {value!r}."
        ) from exc
    if ndim is not None and arr.ndim != ndim:
        raise ParameterError(
            f"The {name!r} parameter of {owner} must be a {ndim}-dimensional array. "
            f"Got shape {arr.shape} instead."
        )
    where = describe_range(low, high, low_inclusive, high_inclusive)
    bad = ~np.isfinite(arr)
    if low is not None:
        bad |= (arr < low) if low_inclusive else (arr <= low)
    if high is not None:
        bad |= (arr > high) if high_inclusive else (arr >= high)
    if bad.any():
        if arr.ndim == 0:
            raise ParameterError(
                f"The {name!r} parameter of {owner} must be a finite value in {where}. "
                f"Got {arr.item()!r} instead."
            )
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ParameterError(
            f"The {name!r} parameter of {owner} must hold finite values in {where}. "
            f"Got {arr[idx].item()!r} at index {idx if arr.ndim > 1 else idx[0]} "
            f"({int(bad.sum())} bad value(s) in all)."
        )
    return arr


def as_coordinates(x, y, owner: str) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Broadcast image-plane coordinates (arcsec) to flat contiguous float64 arrays.

    Returns ``(x_flat, y_flat, shape)``; results are reshaped to ``shape`` by the caller.
    Raises :class:`ParameterError` for non-numeric input, NaN/inf, or shapes that do not
    broadcast.
    """
    xa = check_array(as_value(x, "arcsec", "x", owner), "x", owner)
    ya = check_array(as_value(y, "arcsec", "y", owner), "y", owner)
    try:
        xb, yb = np.broadcast_arrays(xa, ya)
    except ValueError as exc:
        raise ParameterError(
            f"The 'x' and 'y' coordinates passed to {owner} must have the same (or "
            f"broadcastable) shapes. Got {xa.shape} and {ya.shape}."
        ) from exc
    shape = xb.shape
    return (
        np.ascontiguousarray(xb, dtype=np.float64).ravel(),
        np.ascontiguousarray(yb, dtype=np.float64).ravel(),
        shape,
    )


def as_value(value, unit, name: str, owner: str):
    """``value`` in ``unit`` without its astropy unit: the one door through which Quantities
    come into the library.

    A :class:`~astropy.units.Quantity` (or a list or tuple holding Quantities) is converted to
    ``unit``; anything else is returned unchanged, taken to be in ``unit`` already (the
    documented plain unit), for the usual range checks to follow.  Dimensionless targets
    accept astropy's ``redshift`` unit.

    Parameters
    ----------
    value : Quantity, list or tuple of Quantities, or plain numbers
        What the caller passed in.
    unit : str, astropy unit, or tuple of them
        The documented unit (``"Msun"``, ``"Mpc"``, ``"arcsec"``, ``"km/s"``, ``"deg"``,
        ``""`` for dimensionless); a tuple lists alternatives tried in order (an AB magnitude
        is ``("mag", "mag(AB)")``), the first named in the message.
    name, owner : str
        The parameter's name and the class or function it belongs to, used in the message.

    Raises
    ------
    ParameterError
        For a Quantity whose unit cannot be converted to ``unit``: the message names the
        parameter, the expected unit and the unit given.
    """
    # whoever made a Quantity has imported astropy: without it, no import and no check
    units = sys.modules.get("astropy.units")
    if units is None:
        return value
    quantity = units.Quantity
    if not isinstance(value, quantity):
        if isinstance(value, list | tuple) and any(isinstance(v, quantity) for v in value):
            items = enumerate(value)
            return type(value)(as_value(v, unit, f"{name}[{i}]", owner) for i, v in items)
        return value
    targets = [units.Unit(t) for t in (unit if isinstance(unit, tuple) else (unit,))]
    for target in targets:
        equivalencies = []
        if target.physical_type == "dimensionless":
            from astropy.cosmology.units import dimensionless_redshift

            equivalencies = dimensionless_redshift()
        try:
            return value.to_value(target, equivalencies=equivalencies)
        except units.UnitsError:
            continue
    spelled = unit[0] if isinstance(unit, tuple) else unit
    expected = _describe_unit(targets[0], spelled)
    given = _describe_unit(value.unit)
    given = "a dimensionless Quantity" if given == "dimensionless" else f"a Quantity {given}"
    raise ParameterError(
        f"The {name!r} parameter of {owner} must be {expected}: a plain number in that unit or "
        f"a Quantity convertible to it. Got {given} instead."
    )


def _describe_unit(unit, spelled=None) -> str:
    """``in Msun (mass)``, ``dimensionless`` or ``in mag`` for a message."""
    text = spelled if isinstance(spelled, str) and spelled else unit.to_string()
    kind = str(getattr(unit, "physical_type", "unknown"))
    if kind == "dimensionless" or not text:
        return "dimensionless"
    return f"in {text}" if kind == "unknown" else f"in {text} ({kind})"
