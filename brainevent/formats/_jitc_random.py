"""The random structure of just-in-time connectivity, drawn in integer arithmetic.

A JITC matrix of shape ``(m, n)`` is a function of ``(prob, seed)`` and its
weight parameters. This module defines that function once, in operations that
every backend computes bit for bit: unsigned 32-bit integer arithmetic, shifts,
lookups in two constant tables and one 32 x 32 -> 64-bit product. No platform
random number generator and no transcendental function takes part in choosing
the entries, so the pure-JAX kernels (any platform) and the numba kernels draw
the same matrix.

The method
----------
* ``prob`` is read as float32 and rounded to a multiple of ``2**-32``: the
  effective probability is ``P / 2**32`` with ``P = round(prob * 2**32)``
  (``prob >= 1`` connects everything, ``P == 0`` nothing).
* Row ``i`` owns the stream ``u_t = draw(row_key(seed, i), t)``, ``t = 0, 1, ...``,
  where ``draw`` and ``row_key`` compose an integer hash (``mix``, a 32-bit
  finaliser with good avalanche) so that rows, seeds and draw indices give
  unrelated values.
* The columns of row ``i`` are visited by geometric skips (each column present
  independently with probability ``p``): ``c_0 = g(u_0)``,
  ``c_t = c_{t-1} + 1 + g(u_t)``, stopping at the first ``c_t >= n``, with
  ``g(u) = floor(E(u) / lam)``, ``E(u) = -ln((u | 1) / 2**32)`` (an exponential
  variate) and ``lam = -ln(1 - p)``. Generating a row costs one draw per entry
  plus one.
* ``E(u)`` is evaluated in fixed point (27 fractional bits) from the leading
  zero count of ``u | 1`` and a 4097-entry table of ``ln(1 + k / 4096)``
  (32 fractional bits) with linear interpolation: absolute error below
  ``2e-8``. ``1 / lam`` is computed once per call, in integer arithmetic, as a
  32-bit mantissa and a shift (relative error below ``1e-8``).

The approximation, all told: a skip differs from an exact geometric draw only
when ``E(u) / lam`` lies within about ``2e-8 / lam`` of an integer, and ``u``
has 32 bits, so skips beyond ``22 / lam`` (probability ``e**-22``) are never
drawn; with ``p`` rounded as above, each entry is present with probability
``P / 2**32`` and independently of the others up to these effects. The test
suite checks per-row counts (mean and variance), column marginals and the
independence of neighbouring rows and seeds.

Weights are drawn from a second stream of the row, ``draw(row_key ^ WEIGHT_SALT,
t)``: uniform variates from the top 23 bits (exact in float32); normal variates by Box-Muller (they
use ``log``/``cos``, so backends agree on weights to floating-point tolerance,
not bit for bit).
"""

import decimal
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ['structure_params', 'row_keys', 'draw', 'skip', 'uniform01', 'normal01',
           'LN_TABLE', 'LN2_TABLE', 'SEED_SALT', 'ROW_SALT', 'WEIGHT_SALT', 'MIX', 'MASK',
           'GOLDEN']

MASK = 0xFFFFFFFF
MIX = (0x21F0AAAD, 0x735A2D97)   # multipliers of the 32-bit finaliser
GOLDEN = 0x9E3779B9              # odd: t * GOLDEN spreads consecutive draw indices
SEED_SALT = 0x6A09E667
ROW_SALT = 0xBB67AE85
WEIGHT_SALT = 0x3C6EF372
TABLE_BITS = 12
_LN2 = decimal.Decimal('0.6931471805599453094172321214581765680755')
_SERIES_TERMS = 40


def _round(x: decimal.Decimal) -> int:
    return int(x.to_integral_value(decimal.ROUND_HALF_EVEN))


@functools.cache
def _ln_table() -> np.ndarray:
    """``round(ln(1 + k / 4096) * 2**32)`` for k = 0..4096, rounded exactly.

    float64 is exact here except within a few ulps of a rounding tie; those
    entries are recomputed with ``decimal``.
    """
    size = 1 << TABLE_BITS
    scaled = np.log1p(np.arange(size + 1) / size) * 2.0 ** 32
    table = np.rint(scaled)
    near_tie = np.abs(scaled - np.floor(scaled) - 0.5) < 1e-5
    ctx = decimal.Context(prec=40)
    for k in np.flatnonzero(near_tie):
        value = ctx.ln(decimal.Decimal(size + int(k)) / size) * (1 << 32)
        table[k] = _round(value)
    return table.astype(np.uint32)


LN_TABLE = _ln_table()
# round(k * ln 2 * 2**27), k = 0..32: the exponent part of E in the same fixed point
LN2_TABLE = np.array([_round(k * _LN2 * (1 << 27)) for k in range(33)], np.uint32)
# round(a * ln 2 * 2**59) as (hi, lo) 32-bit words, a = 0..32
_LN2_59 = [_round(a * _LN2 * (1 << 59)) for a in range(33)]
_LN2_59_HI = np.array([v >> 32 for v in _LN2_59], np.uint32)
_LN2_59_LO = np.array([v & MASK for v in _LN2_59], np.uint32)


# ---------------------------------------------------------------------------
# 32-bit integer helpers (JAX, uint32 arrays; no 64-bit types needed)
# ---------------------------------------------------------------------------

def _u32(x):
    return jnp.asarray(x, jnp.uint32)


def _shr(x, k):
    """``x >> k`` for shift amounts in [0, 64), zero from 32 on."""
    k = _u32(k)
    return jnp.where(k >= 32, _u32(0), lax.shift_right_logical(x, jnp.minimum(k, 31)))


def _shl(x, k):
    k = _u32(k)
    return jnp.where(k >= 32, _u32(0), lax.shift_left(x, jnp.minimum(k, 31)))


def mul_wide(a, b):
    """The 64-bit product of two uint32 arrays as ``(hi, lo)`` words."""
    a_lo, a_hi = a & 0xFFFF, a >> 16
    b_lo, b_hi = b & 0xFFFF, b >> 16
    ll, lh, hl, hh = a_lo * b_lo, a_lo * b_hi, a_hi * b_lo, a_hi * b_hi
    mid = (ll >> 16) + (lh & 0xFFFF) + (hl & 0xFFFF)
    lo = (ll & 0xFFFF) | (mid << 16)
    hi = hh + (lh >> 16) + (hl >> 16) + (mid >> 16)
    return hi, lo


def _shr64(hi, lo, k):
    """``(hi:lo) >> k`` as ``(hi, lo)``, for k in [0, 64)."""
    k = _u32(k)
    small = k < 32
    lo_small = _shr(lo, k) | _shl(hi, 32 - jnp.minimum(k, 32))
    return (jnp.where(small, _shr(hi, k), _u32(0)),
            jnp.where(small, lo_small, _shr(hi, k - jnp.minimum(k, 32))))


def mix(x):
    """A 32-bit finaliser (xor-shift-multiply), a bijection with full avalanche."""
    x = x ^ (x >> 16)
    x = x * _u32(MIX[0])
    x = x ^ (x >> 15)
    x = x * _u32(MIX[1])
    return x ^ (x >> 15)


def row_keys(seed_key, rows):
    """The key of each row's stream (``seed_key`` from :func:`structure_params`)."""
    return mix(seed_key ^ mix(_u32(rows) + _u32(ROW_SALT)))


def draw(key, t):
    """The ``t``-th 32-bit value of the stream ``key``: ``mix(key ^ (t * GOLDEN))``.

    Streams of different keys never repeat each other shifted (``key ^ x`` is
    not a translation in ``t``), so rows share no runs of draws.
    """
    return mix(key ^ (_u32(t) * _u32(GOLDEN)))


def skip(u, m_inv, shift, cap):
    """``min(floor(E(u) / lam), cap)`` from one draw (``m_inv``, ``shift``: see params)."""
    v = u | 1
    z = lax.clz(v)
    frac = lax.shift_left(v, z) << 1  # the bits after the leading one, 32 fractional bits
    k = frac >> (32 - TABLE_BITS)
    rem = frac & ((1 << (32 - TABLE_BITS)) - 1)  # position inside the table interval
    table = jnp.asarray(LN_TABLE)
    t0, t1 = table[k], table[k + 1]
    ln_frac = t0 + mul_wide(t1 - t0, rem << TABLE_BITS)[0]  # (t1 - t0) * rem >> 20
    e = jnp.asarray(LN2_TABLE)[z + 1] - (ln_frac >> 5)  # -ln(v / 2**32), 27 fractional bits
    hi, lo = _shr64(*mul_wide(e, m_inv), shift)
    cap = _u32(cap)
    return jnp.where((hi != 0) | (lo > cap), cap, lo)


def uniform01(r, dtype):
    """A uniform variate in (0, 1) from the top 23 bits of ``r`` (exact in float32)."""
    return ((r >> 9).astype(dtype) + 0.5) * (2.0 ** -23)


def normal01(r1, r2, dtype):
    """A standard normal variate by Box-Muller from two draws."""
    u1, u2 = uniform01(r1, dtype), uniform01(r2, dtype)
    return jnp.sqrt(-2 * jnp.log(u1)) * jnp.cos((2 * np.pi) * u2)


# ---------------------------------------------------------------------------
# Per-call parameters: (seed key, mantissa of 1 / lam, shift)
# ---------------------------------------------------------------------------

def _series(z):
    """``T(z) = 1 + sum_j z**j / (j + 1)`` in 31 fractional bits, z in 32 (z <= 1/2)."""
    def term(j, state):
        power, acc = state
        acc = acc + ((power // _u32(j + 1)) >> 1)
        return mul_wide(power, z)[0], acc
    _, acc = lax.fori_loop(1, _SERIES_TERMS + 1, term, (z, _u32(0)))
    return _u32(1 << 31) + acc


def _reciprocal(d):
    """``min(floor(2**63 / d), 2**32 - 1)`` for ``2**31 <= d < 2**32``, by long division."""
    def step(_, state):
        rem, quo = state
        carry = rem >> 31
        rem = rem << 1
        take = (carry != 0) | (rem >= d)
        return jnp.where(take, rem - d, rem), (quo << 1) | take.astype(jnp.uint32)
    rem0 = _u32(1 << 31)
    exact_half = d == _u32(1 << 31)
    _, quo = lax.fori_loop(0, 32, step, (jnp.where(exact_half, _u32(0), rem0), _u32(0)))
    return jnp.where(exact_half, _u32(MASK), quo)


@jax.jit
def structure_params(prob, seed):
    """``uint32[3]``: the seed's key, and ``(m_inv, shift)`` with ``1/lam = m_inv * 2**-(63 + L)``.

    ``g = (E * m_inv) >> shift`` then equals ``floor(E / lam)``, ``E`` in 27
    fractional bits. ``prob >= 1`` gives ``m_inv = 0`` (no skips), ``P == 0``
    gives skips beyond any row.
    """
    p = jnp.asarray(prob, jnp.float32)
    seed = jnp.asarray(seed).astype(jnp.uint32)
    seed_key = mix(mix(seed) + _u32(SEED_SALT))
    inside = (p > 0) & (p < 1)
    big = jnp.round(jnp.where(inside, p, 0) * jnp.float32(2.0 ** 32))
    P = big.astype(jnp.uint32)  # < 2**32 - 255 for float32 p < 1
    upper = P > _u32(1 << 31)  # p > 1/2: lam = a ln 2 + y T(y), q = 1 - p = (1 - y) 2**-a
    Q = _u32(0) - P
    a = jnp.where(upper, lax.clz(Q), _u32(0))
    z = jnp.where(upper, _u32(0) - lax.shift_left(Q, a), P)
    zt_hi, zt_lo = _shr64(*mul_wide(z, _series(z)), 4)  # z T(z), 59 fractional bits
    lo = zt_lo + jnp.asarray(_LN2_59_LO)[a]
    hi = zt_hi + jnp.asarray(_LN2_59_HI)[a] + (lo < zt_lo).astype(jnp.uint32)
    bits = jnp.where(hi != 0, 64 - lax.clz(hi), 32 - lax.clz(lo))  # bit length of lam
    top = jnp.where(bits >= 32, _shr64(hi, lo, bits - 32)[1], _shl(lo, 32 - bits))
    m_inv = _reciprocal(top)
    shift = bits - 1
    full, empty = p >= 1, P == 0
    m_inv = jnp.where(full, _u32(0), jnp.where(empty, _u32(MASK), m_inv))
    shift = jnp.where(full | empty, _u32(0), shift)
    return jnp.stack([seed_key, m_inv, shift]).astype(jnp.uint32)
