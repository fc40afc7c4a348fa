"""Vectorisable double-precision arctan, arctanh and log for numba kernels.

numba lowers ``math.atan``/``math.log`` to scalar libm calls, which stop LLVM from
vectorising a pixel loop (numba here has no SVML).  These replacements use only
arithmetic, one division, ``sqrt``-free argument reduction and integer bit operations, so a
loop that calls them compiles to SIMD code.  Accuracy: about 2e-16 relative (a few ulp).

Argument reduction
    arctan(n/d), d > 0, a = |n|:  a/d within a factor tan(pi/8) of 1 uses
    pi/4 + arctan((a - d)/(a + d)), a < d arctan(a/d), a > d pi/2 - arctan(d/a); numerator,
    denominator and offset are chosen with selects, so one division gives u with
    |u| <= tan(pi/8), and the sign of n is copied onto the result.
    arctanh(n/d), |n| < d:  |z| <= 1/3 is evaluated directly; otherwise
    arctanh(z) = log(A/B)/2 with A = d + |n|, B = d - |n|, A = mA 2^eA, B = mB 2^eB
    (mantissas in [1, 2)), log(A/B) = (eA - eB) ln 2 + 2 arctanh((mA - mB)/(mA + mB)).
Polynomials
    arctan(u)/u and arctanh(u)/u as degree-11 polynomials in w = u^2 on
    [0, (sqrt(2) - 1)^2], Chebyshev fits computed with mpmath at 40 digits (maximum
    error below 1.3e-18 and 1.1e-17 respectively), by Estrin's scheme; the SIE deflection
    (:func:`atan_atanh_ratio`) uses degree-9 fits by Horner's rule (docs/profiles.md).
"""

from __future__ import annotations

import math

from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

__all__: list[str] = []

_ATAN_POLY = (
    -0.017805397205419446,
    0.03796525745386593,
    -0.05035102456601552,
    0.05846878297330872,
    -0.06662951813629191,
    0.07692045330902225,
    -0.09090896809064027,
    0.11111110744919658,
    -0.14285714279250245,
    0.19999999999940893,
    -0.3333333333333312,
    1.0,
)
_ATANH_POLY = (
    0.11968745558984076,
    0.006896188610632678,
    0.06408675434646773,
    0.056848346605057956,
    0.06688778607655803,
    0.07690672955642465,
    0.09090988126161803,
    0.1111110870002582,
    0.14285714328958476,
    0.19999999999600448,
    0.33333333333334775,
    1.0,
)
# Lower-degree fits used by the SIE deflection kernel, where every operation counts:
# arctan(u)/u on [0, (sqrt 2 - 1)^2] (max error 9.6e-16) and arctanh(u)/u on [0, 1/9]
# (max error 4.9e-17), degree 9 in w, same mpmath Chebyshev fits.
_ATAN_POLY10 = (
    -0.025316479573776477,
    0.05024762118940128,
    -0.0650598296717084,
    0.07673535428183285,
    -0.09089529956562307,
    0.11111048853751296,
    -0.14285712661684793,
    0.19999999978392663,
    -0.3333333333322143,
    0.999999999999999,
)
_ATANH_THIRD_POLY10 = (
    0.08890381913056651,
    0.04940394524382393,
    0.06795652742789947,
    0.07681838124445817,
    0.09091429900236955,
    0.11111095430673142,
    0.1428571455582858,
    0.199999999976438,
    0.33333333333341286,
    1.0,
)
# the same polynomials less their constant term, divided by w (leading zero keeps 12 terms)
_ATAN_TAIL = (0.0,) + _ATAN_POLY[:-1]
_ATANH_TAIL = (0.0,) + _ATANH_POLY[:-1]
_TAN_PI_8 = math.sqrt(2.0) - 1.0
_LN2 = math.log(2.0)
_MANTISSA_MASK = 0x000FFFFFFFFFFFFF
_EXPONENT_ONE = 0x3FF0000000000000


@intrinsic
def _as_int64(typingctx, value):
    """Reinterpret the bits of a float64 as an int64 (no conversion)."""
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return sig, codegen


@intrinsic
def _as_float64(typingctx, value):
    """Reinterpret the bits of an int64 as a float64 (no conversion)."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@njit(inline="always", cache=True, fastmath={"contract"})
def _estrin12(c, w):
    """Degree-11 polynomial ``c`` (highest power first) at ``w`` by Estrin's scheme.

    Estrin's scheme has a dependency depth of 4 multiply-adds instead of Horner's 11, so a
    SIMD loop is limited by throughput, not by latency.
    """
    w2 = w * w
    w4 = w2 * w2
    q0 = (c[11] + c[10] * w) + (c[9] + c[8] * w) * w2
    q1 = (c[7] + c[6] * w) + (c[5] + c[4] * w) * w2
    q2 = (c[3] + c[2] * w) + (c[1] + c[0] * w) * w2
    return q0 + (q1 + q2 * w4) * w4


@njit(inline="always", cache=True)
def _poly_atan(w):
    return _estrin12(_ATAN_POLY, w)


@njit(inline="always", cache=True)
def _poly_atanh(w):
    return _estrin12(_ATANH_POLY, w)


@njit(inline="always", cache=True)
def _poly_atan_tail(w):
    """(arctan(u)/u - 1)/w with w = u^2, without the cancellation of subtracting 1."""
    return _estrin12(_ATAN_TAIL, w)


@njit(inline="always", cache=True)
def _poly_atanh_tail(w):
    """(arctanh(u)/u - 1)/w with w = u^2, without the cancellation of subtracting 1."""
    return _estrin12(_ATANH_TAIL, w)


@njit(inline="always", cache=True, fastmath={"contract"})
def _horner10(c, w):
    """Degree-9 polynomial ``c`` (highest power first) at ``w`` by Horner's rule.

    Fewer operations than Estrin's scheme (9 multiply-adds, no powers of w): in the SIE
    deflection the multiply-add pipes, not latency, are the limit (docs/profiles.md).
    """
    r = c[0] * w + c[1]
    r = r * w + c[2]
    r = r * w + c[3]
    r = r * w + c[4]
    r = r * w + c[5]
    r = r * w + c[6]
    r = r * w + c[7]
    r = r * w + c[8]
    return r * w + c[9]


@njit(inline="always", cache=True, error_model="numpy")
def _atan_parts(a, d):
    """For a >= 0, d > 0: (num, den, offset) with arctan(a/d) = offset + arctan(num/den) and
    |num/den| <= tan(pi/8), using selects and one multiplication only.

    Three cases: a/d within a factor tan(pi/8) of 1 (|a - d| < tan(pi/8) (a + d)):
    pi/4 + arctan((a - d)/(a + d)); a <= d: arctan(a/d); a > d: pi/2 - arctan(d/a).
    """
    diff = a - d
    total = a + d
    near_one = abs(diff) < _TAN_PI_8 * total
    small = a <= d
    num = diff if near_one else (a if small else -d)
    den = total if near_one else max(a, d)
    offset = 0.25 * math.pi if near_one else (0.0 if small else 0.5 * math.pi)
    return num, den, offset


@njit(inline="always", cache=True, error_model="numpy")
def _atanh_parts(h, d):
    """For 0 <= h < d: (num, den, offset) with arctanh(h/d) = offset + arctanh(num/den) and
    |num/den| <= 1/3: h <= d/3 directly; otherwise through log((d + h)/(d - h))/2 with the
    exponents and mantissas of d + h and d - h split by integer bit operations."""
    big = d + h
    small = max(d - h, 1e-300)
    ib = _as_int64(big)
    ism = _as_int64(small)
    # both are positive, so the shifted bits are the biased exponents (no sign bit to mask)
    k = (ib >> 52) - (ism >> 52)
    mb = _as_float64((ib & _MANTISSA_MASK) | _EXPONENT_ONE)
    ms = _as_float64((ism & _MANTISSA_MASK) | _EXPONENT_ONE)
    direct = h + h <= small  # 3 h <= d without a multiplication
    num = h if direct else mb - ms
    den = d if direct else mb + ms
    offset = 0.0 if direct else k * (0.5 * _LN2)
    return num, den, offset


@njit(inline="always", cache=True, error_model="numpy")
def atan_ratio(n, d):
    """arctan(n / d) for d > 0 (any n), with a single division (degree-11 polynomial)."""
    num, den, offset = _atan_parts(abs(n), d)
    u = num / den
    return math.copysign(offset + u * _poly_atan(u * u), n)


@njit(inline="always", cache=True, error_model="numpy")
def atanh_ratio(n, d):
    """arctanh(n / d) for |n| < d, with a single division (degree-11 polynomial)."""
    num, den, offset = _atanh_parts(abs(n), d)
    u = num / den
    return math.copysign(offset + u * _poly_atanh(u * u), n)


@njit(inline="always", cache=True, error_model="numpy")
def atan_atanh_ratio(n1, n2, d):
    """(arctan(n1/d), arctanh(n2/d)) for d > 0, |n2| < d.

    The reductions use selects (:func:`_atan_parts`, :func:`_atanh_parts`), the two
    quotients two divisions (the divider has spare capacity here; sharing one reciprocal
    costs five multiplications on the busier multiply-add pipes), and the polynomials are
    the degree-9 fits by Horner's rule.  Both results are non-negative before the sign of
    the numerator is copied onto them.
    """
    num1, den1, off1 = _atan_parts(abs(n1), d)
    num2, den2, off2 = _atanh_parts(abs(n2), d)
    u1 = num1 / den1
    u2 = num2 / den2
    r1 = off1 + u1 * _horner10(_ATAN_POLY10, u1 * u1)
    r2 = off2 + u2 * _horner10(_ATANH_THIRD_POLY10, u2 * u2)
    return math.copysign(r1, n1), math.copysign(r2, n2)


@njit(inline="always", cache=True, error_model="numpy")
def log_positive(x):
    """Natural log of a positive, normal float64."""
    ix = _as_int64(x)
    e = ((ix >> 52) & 0x7FF) - 1023
    m = _as_float64((ix & _MANTISSA_MASK) | _EXPONENT_ONE)
    # centre the mantissa on 1: m in [sqrt(1/2), sqrt(2))
    big = m > math.sqrt(2.0)
    m = 0.5 * m if big else m
    e = e + 1 if big else e
    u = (m - 1.0) / (m + 1.0)
    return e * _LN2 + 2.0 * u * _poly_atanh(u * u)


# exp(r) for |r| <= ln(2)/2: Taylor coefficients 1/k!, k = 13..0 (truncation error < 4e-18)
_EXP_POLY = tuple(1.0 / math.factorial(k) for k in range(13, -1, -1))
_LN2_HI = 6.93147180369123816490e-01  # ln 2 split so that k * _LN2_HI is exact for |k| < 2^20
_LN2_LO = 1.90821492927058770002e-10
_EXP_MIN = -708.0  # below this exp underflows to subnormals; returned as 0
_EXP_MAX = 709.0


@njit(inline="always", cache=True, fastmath={"contract"})
def _estrin14(c, w):
    """Degree-13 polynomial ``c`` (highest power first) at ``w`` by Estrin's scheme."""
    w2 = w * w
    w4 = w2 * w2
    w8 = w4 * w4
    q0 = (c[13] + c[12] * w) + (c[11] + c[10] * w) * w2
    q1 = (c[9] + c[8] * w) + (c[7] + c[6] * w) * w2
    q2 = (c[5] + c[4] * w) + (c[3] + c[2] * w) * w2
    q3 = c[1] + c[0] * w
    return (q0 + q1 * w4) + (q2 + q3 * w4) * w8


@njit(inline="always", cache=True, error_model="numpy")
def exp_finite(x):
    """exp(x) for finite x <= 709, vectorisable (0 below -708: no subnormals; a few ulp).

    exp(x) = 2^k exp(r) with k = round(x / ln 2), r = x - k ln 2 (ln 2 in two parts) and
    2^k built from its exponent bits.
    """
    xc = min(max(x, _EXP_MIN), _EXP_MAX)
    k = math.floor(xc * (1.0 / _LN2) + 0.5)
    r = (xc - k * _LN2_HI) - k * _LN2_LO
    two_k = _as_float64((int(k) + 1023) << 52)
    value = two_k * _estrin14(_EXP_POLY, r)
    return value if x >= _EXP_MIN else 0.0
