"""An independent pure-Python/numpy reference of the JITC generator.

Written from the specification in ``brainevent/formats/_jitc_random.py`` (module
docstring): only the constants (the hash multipliers and salts, the table size)
are imported; the tables, the hash, the fixed-point ``E(u)``, the per-call
parameters and the weight draws are computed here again, with Python integers
(exact) and ``decimal`` (high precision), so that an error in the package's
integer arithmetic cannot hide in the reference.

The matrix of shape ``(m, n)`` (orientation ``'R'``):

* ``P = round(float32(prob) * 2**32)``; ``prob >= 1`` connects everything,
  ``P == 0`` nothing; otherwise ``lam = -ln(1 - P / 2**32)``.
* row ``i`` reads the stream ``u_t = draw(row_key(seed_key, i), t)``; the
  columns are ``c_0 = g(u_0)``, ``c_t = c_{t-1} + 1 + g(u_t)`` while ``< n``, with
  ``g(u) = floor(E(u) / lam)``, ``E(u) ~= -ln((u | 1) / 2**32)`` in fixed point.
* the ``t``-th entry of row ``i`` weighs ``sum_k theta[k] basis_k`` with the
  bases drawn from ``draw(row_key ^ WEIGHT_SALT, .)``: ``(1,)``, ``(1 - x, x)``
  with ``x = uniform01(draw(wkey, t))``, ``(1, z)`` with ``z`` Box-Muller of
  ``draw(wkey, 2t)``, ``draw(wkey, 2t + 1)``.

``g`` is computed either exactly (``floor(E / lam)`` with ``decimal``) or, given
the package's integer ``(m_inv, shift)`` (``1/lam ~= m_inv * 2**(27 - shift)``,
checked separately against the exact value), as ``(E * m_inv) >> shift``, which
reproduces the package bit for bit.
"""

import decimal
import functools
import math

import numpy as np

from brainevent.formats._jitc_random import (MIX, ROW_SALT, SEED_SALT, TABLE_BITS,
                                             WEIGHT_SALT)

MASK = (1 << 32) - 1
E_BITS = 27          # fractional bits of the fixed-point E(u)
LN_BITS = 32         # fractional bits of the ln(1 + k / 2**TABLE_BITS) table
_CTX = decimal.Context(prec=60)
_LN2 = _CTX.ln(decimal.Decimal(2))


def _round_half_even(x: decimal.Decimal) -> int:
    return int(x.to_integral_value(decimal.ROUND_HALF_EVEN))


# ---------------------------------------------------------------------------
# Tables (exact rounding with decimal)
# ---------------------------------------------------------------------------

@functools.cache
def ln_table() -> tuple:
    """``round(ln(1 + k / 2**TABLE_BITS) * 2**32)`` for ``k = 0 .. 2**TABLE_BITS``."""
    size = 1 << TABLE_BITS
    return tuple(_round_half_even(_CTX.ln(decimal.Decimal(size + k) / size) * (1 << LN_BITS))
                 for k in range(size + 1))


@functools.cache
def ln2_table() -> tuple:
    """``round(k * ln 2 * 2**27)`` for ``k = 0 .. 32``."""
    return tuple(_round_half_even(k * _LN2 * (1 << E_BITS)) for k in range(33))


# ---------------------------------------------------------------------------
# The hash (32-bit, Python integers)
# ---------------------------------------------------------------------------

def mix(x: int) -> int:
    x &= MASK
    x ^= x >> 16
    x = (x * MIX[0]) & MASK
    x ^= x >> 15
    x = (x * MIX[1]) & MASK
    return x ^ (x >> 15)


def seed_key(seed: int) -> int:
    return mix(mix(seed) + SEED_SALT)


def row_key(skey: int, row: int) -> int:
    return mix(skey ^ mix(row + ROW_SALT))


def draw(key: int, t: int) -> int:
    return mix(key ^ ((t * 0x9E3779B9) & 0xFFFFFFFF))


# ---------------------------------------------------------------------------
# E(u) = -ln((u | 1) / 2**32) in fixed point
# ---------------------------------------------------------------------------

def fixed_e(u: int) -> int:
    """``E(u) * 2**27`` as the specification computes it.

    ``v = u | 1 = 2**(31 - z) * (1 + f)`` with ``z`` the leading zero count and
    ``f = frac / 2**32``; ``-ln(v / 2**32) = (z + 1) ln 2 - ln(1 + f)``, where
    ``ln(1 + f)`` is interpolated linearly in the table (32 fractional bits,
    truncated) and brought to 27 fractional bits by truncation.
    """
    table, ln2s = ln_table(), ln2_table()
    v = (u | 1) & MASK
    z = 32 - v.bit_length()
    frac = ((v << (z + 1)) & MASK)                      # the bits after the leading one
    k = frac >> (32 - TABLE_BITS)
    rem = frac & ((1 << (32 - TABLE_BITS)) - 1)
    ln_frac = table[k] + (((table[k + 1] - table[k]) * rem) >> (32 - TABLE_BITS))
    return ln2s[z + 1] - (ln_frac >> (LN_BITS - E_BITS))


def exact_e(u: int) -> float:
    """``-ln((u | 1) / 2**32)`` in float64."""
    return -math.log(((u | 1) & MASK) / 2.0 ** 32)


# ---------------------------------------------------------------------------
# Per-call parameters
# ---------------------------------------------------------------------------

def prob_bits(prob) -> int:
    """``P = round(float32(prob) * 2**32)`` (half to even), 0 for ``prob >= 1`` handled apart."""
    p = float(np.float32(prob))
    if p >= 1.0:
        return 1 << 32
    if p <= 0.0:
        return 0
    return round(p * 2.0 ** 32)  # exact: p * 2**32 is a float64 without rounding


def lam_exact(P: int) -> decimal.Decimal:
    """``-ln(1 - P / 2**32)`` to 60 digits."""
    return -_CTX.ln(1 - decimal.Decimal(P) / (1 << 32))


class Params:
    """``(seed_key, m_inv, shift)`` from the definition, plus the exact ``lam``.

    ``shift`` is the one integer for which the mantissa ``2**(shift - 27) / lam``
    of ``1/lam`` lies in ``[2**31, 2**32)``; ``m_inv_exact`` is that (real) value.
    ``prob >= 1``: ``m_inv = 0, shift = 0`` (every skip 0); ``P == 0``:
    ``m_inv = 2**32 - 1, shift = 0`` (every skip past the row).
    """

    def __init__(self, prob, seed):
        self.P = prob_bits(prob)
        self.seed_key = seed_key(int(seed))
        self.full = self.P >= 1 << 32
        self.empty = self.P == 0
        if self.full or self.empty:
            self.lam = None
            self.shift = 0
            self.m_inv_exact = decimal.Decimal(0 if self.full else MASK)
            return
        self.lam = lam_exact(self.P)
        # bit length of floor(lam * 2**59), minus one: floor(log2(lam)) + 59
        self.shift = int(_CTX.multiply(self.lam, decimal.Decimal(1 << 59))).bit_length() - 1
        self.m_inv_exact = _CTX.divide(_CTX.power(decimal.Decimal(2), self.shift - E_BITS),
                                       self.lam)

    def rel_error(self, m_inv: int, shift: int) -> float:
        """Relative error of ``m_inv * 2**(27 - shift)`` as ``1 / lam`` (inf if shifts differ)."""
        if shift != self.shift:
            return math.inf
        if self.full or self.empty:
            return 0.0 if m_inv == int(self.m_inv_exact) else math.inf
        return float(abs(decimal.Decimal(m_inv) - self.m_inv_exact) / self.m_inv_exact)


def skip_exact(e: int, params: Params) -> int:
    """``floor(E / lam)`` with the exact ``lam`` (``E`` the fixed-point integer)."""
    if params.full:
        return 0
    if params.empty:
        return 1 << 62
    return int(_CTX.divide(decimal.Decimal(e), _CTX.multiply(params.lam, 1 << E_BITS)))


# ---------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------

def uniform01(r: int, dtype=np.float64) -> float:
    """``((r >> 9) + 0.5) * 2**-23``, with the rounding of ``dtype`` arithmetic."""
    dtype = np.dtype(dtype)
    return float((dtype.type(r >> 9) + dtype.type(0.5)) * dtype.type(2.0 ** -23))


def normal01(r1: int, r2: int, dtype=np.float64) -> float:
    u1, u2 = uniform01(r1, dtype), uniform01(r2, dtype)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def basis(dist: str, wkey: int, t: int, dtype=np.float64) -> tuple:
    if dist == 'scalar':
        return (1.0,)
    if dist == 'uniform':
        x = uniform01(draw(wkey, t), dtype)
        return (1.0 - x, x)
    if dist == 'normal':
        return (1.0, normal01(draw(wkey, 2 * t), draw(wkey, 2 * t + 1), dtype))
    raise ValueError(dist)


NUM_PARAMS = {'scalar': 1, 'uniform': 2, 'normal': 2}


# ---------------------------------------------------------------------------
# The matrix
# ---------------------------------------------------------------------------

def row_entries(params: Params, row: int, n: int, m_inv=None, shift=None):
    """Columns of row ``row`` in order (the t-th is drawn from ``u_t``)."""
    if n == 0:
        return []
    key = row_key(params.seed_key, row)
    cols, c, t = [], -1, 0
    while True:
        e = fixed_e(draw(key, t))
        g = skip_exact(e, params) if m_inv is None else (e * m_inv) >> shift
        c += 1 + g
        if c >= n:
            return cols
        cols.append(c)
        t += 1


def reference(shape, prob, seed, dist='scalar', theta=(1.0,), orientation='R',
              int_params=None, weight_dtype=np.float64):
    """``(dense, mask, bases)`` of the matrix, in float64.

    ``bases`` is a list of ``len(theta)`` dense basis matrices (``dense =
    sum_k theta[k] * bases[k]``). ``int_params = (m_inv, shift)`` uses the
    package's integer reciprocal for the skips (bit-exact); ``None`` divides by
    the exact ``lam``. ``weight_dtype`` rounds the uniform variates as that dtype
    does (float32 arithmetic rounds the Box-Muller steps).
    """
    m, n = shape
    if orientation == 'C':
        dense, mask, bases = reference((n, m), prob, seed, dist, theta, 'R', int_params,
                                       weight_dtype)
        return dense.T, mask.T, [b.T for b in bases]
    params = Params(prob, seed)
    m_inv, shift = (None, None) if int_params is None else (int(int_params[0]),
                                                            int(int_params[1]))
    k = NUM_PARAMS[dist]
    bases = [np.zeros((m, n)) for _ in range(k)]
    mask = np.zeros((m, n), bool)
    for i in range(m):
        cols = row_entries(params, i, n, m_inv, shift)
        if not cols:
            continue
        wkey = row_key(params.seed_key, i) ^ WEIGHT_SALT
        for t, c in enumerate(cols):
            mask[i, c] = True
            for b, value in zip(bases, basis(dist, wkey, t, weight_dtype)):
                b[i, c] = value
    dense = sum((float(th) * b for th, b in zip(theta, bases)), np.zeros((m, n)))
    return dense, mask, bases
