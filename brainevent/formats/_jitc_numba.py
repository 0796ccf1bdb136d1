"""numba bodies of the JITC product kernels (CPU).

The hash, the skip and the weight draws of :mod:`._jitc_random`, written again
for numba: 32-bit values held in uint64 and masked after each product, so that
they equal the JAX functions bit for bit (the test suite compares the two on
every entry). One body per (distribution, transpose, event, matrix); the rows
of an event operand that carry no spike are never generated.
"""

import numba
import numpy as np
from numba.cpython.unsafe.numbers import leading_zeros

from ..backends._numba_ffi import body_jit, name_of
from ._jitc_random import (GOLDEN, LN2_TABLE, LN_TABLE, MASK, MIX, ROW_SALT, TABLE_BITS,
                           WEIGHT_SALT)

__all__ = ['jitc_scalar_body', 'jitc_normal_body', 'jitc_uniform_body']

_U = np.uint64
_MASK, _M0, _M1 = _U(MASK), _U(MIX[0]), _U(MIX[1])
_ONE, _TWO, _S15, _S16 = _U(1), _U(2), _U(15), _U(16)
_ROW_SALT, _WEIGHT_SALT, _GOLDEN = _U(ROW_SALT), _U(WEIGHT_SALT), _U(GOLDEN)
_TABLE, _LN2_TABLE = LN_TABLE.astype(np.uint64), LN2_TABLE.astype(np.uint64)
_TB, _LOW = _U(32 - TABLE_BITS), _U((1 << (32 - TABLE_BITS)) - 1)
_S5, _S9, _S32 = _U(5), _U(9), _U(32)
_INV23 = 2.0 ** -23
_BLOCK = 8  # draws generated ahead in the event-driven kernel
_TWO_PI = 2 * np.pi

_jit = numba.njit(cache=True)


@_jit
def mix(x):
    x = x ^ (x >> _S16)
    x = (x * _M0) & _MASK
    x = x ^ (x >> _S15)
    x = (x * _M1) & _MASK
    return x ^ (x >> _S15)


@_jit
def row_key(seed_key, row):
    return mix(seed_key ^ mix((_U(row) + _ROW_SALT) & _MASK))


@_jit
def draw(key, t):
    return mix(key ^ ((t * _GOLDEN) & _MASK))


@_jit
def skip(u, m_inv, shift, cap):
    v = u | _ONE
    z = leading_zeros(v) - _S32
    frac = ((v << z) << _ONE) & _MASK
    k = frac >> _TB
    t0 = _TABLE[k]
    ln_frac = t0 + (((_TABLE[k + _ONE] - t0) * (frac & _LOW)) >> _TB)
    g = ((_LN2_TABLE[z + _ONE] - (ln_frac >> _S5)) * m_inv) >> shift
    return np.int64(cap if g > cap else g)


@_jit
def uniform01(r):
    return (float(r >> _S9) + 0.5) * _INV23


@_jit
def uniform_weight(theta, wkey, t):
    x = uniform01(draw(wkey, t))
    return theta[0] * (1.0 - x) + theta[1] * x


@_jit
def normal_weight(theta, wkey, t):
    r1, r2 = draw(wkey, _TWO * t), draw(wkey, _TWO * t + _ONE)
    z = np.sqrt(-2.0 * np.log(uniform01(r1))) * np.cos(_TWO_PI * uniform01(r2))
    return theta[0] + theta[1] * z


@numba.njit(cache=True, inline='always')
def weight(kind, theta, wkey, t):
    """The entry weight; ``kind`` (0 scalar, 1 uniform, 2 normal) is a literal in every body."""
    if kind == 0:
        return theta[0] + 0.0
    if kind == 1:
        return uniform_weight(theta, wkey, t)
    return normal_weight(theta, wkey, t)


_KINDS = {'scalar': 0, 'uniform': 1, 'normal': 2}


def _body(dist, transpose, event, matrix):
    kind = _KINDS[dist]  # a literal: numba folds the weight branches
    jit = body_jit(name_of('jitc_' + dist, transpose, event, matrix))

    if transpose and not matrix:  # out[c] += w * b[i] over the rows of active spikes
        @jit
        def body(theta, params, b, out):
            seed_key, m_inv, shift = _U(params[0]), _U(params[1]), _U(params[2])
            n = out.shape[0]
            cap = _U(n)
            out[:] = 0
            gaps = np.empty(_BLOCK, np.int64)
            for i in range(b.shape[0]):
                if b[i] != 0:
                    key = row_key(seed_key, i)
                    wkey = key ^ _WEIGHT_SALT
                    c = -1
                    t = _U(0)
                    while c < n:  # draws in blocks: independent hashes overlap in the CPU
                        for j in range(_BLOCK):
                            gaps[j] = skip(draw(key, t + _U(j)), m_inv, shift, cap)
                        for j in range(_BLOCK):
                            c += 1 + gaps[j]
                            if c >= n:
                                break
                            w = weight(kind, theta, wkey, t + _U(j))
                            out[c] += w if event else w * b[i]
                        t += _U(_BLOCK)
            return 0
    elif transpose:  # b: (K, m) -> out: (K, n); each row generated once for its spiking samples
        @jit
        def body(theta, params, b, out):
            seed_key, m_inv, shift = _U(params[0]), _U(params[1]), _U(params[2])
            n = out.shape[1]
            cap = _U(n)
            out[:, :] = 0
            active = np.empty(b.shape[0], np.int64)
            for i in range(b.shape[1]):
                count = 0
                for r in range(b.shape[0]):
                    if b[r, i] != 0:
                        active[count] = r
                        count += 1
                if count == 0:
                    continue
                key = row_key(seed_key, i)
                wkey = key ^ _WEIGHT_SALT
                c = -1
                t = _U(0)
                while True:
                    c += 1 + skip(draw(key, t), m_inv, shift, cap)
                    if c >= n:
                        break
                    w = weight(kind, theta, wkey, t)
                    for a in range(count):
                        r = active[a]
                        out[r, c] += w if event else w * b[r, i]
                    t += _ONE
            return 0
    elif not matrix:  # out[i] = sum_c w * b[c]
        @jit
        def body(theta, params, b, out):
            seed_key, m_inv, shift = _U(params[0]), _U(params[1]), _U(params[2])
            n = b.shape[0]
            cap = _U(n)
            for i in range(out.shape[0]):
                key = row_key(seed_key, i)
                wkey = key ^ _WEIGHT_SALT
                out[i] = 0
                acc = out[i]
                c = -1
                t = _U(0)
                while True:
                    c += 1 + skip(draw(key, t), m_inv, shift, cap)
                    if c >= n:
                        break
                    if event:
                        if b[c] != 0:
                            acc += weight(kind, theta, wkey, t)
                    else:
                        acc += weight(kind, theta, wkey, t) * b[c]
                    t += _ONE
                out[i] = acc
            return 0
    else:  # b: (n, K) -> out: (m, K)
        @jit
        def body(theta, params, b, out):
            seed_key, m_inv, shift = _U(params[0]), _U(params[1]), _U(params[2])
            n = b.shape[0]
            cap = _U(n)
            out[:, :] = 0
            for i in range(out.shape[0]):
                key = row_key(seed_key, i)
                wkey = key ^ _WEIGHT_SALT
                c = -1
                t = _U(0)
                while True:
                    c += 1 + skip(draw(key, t), m_inv, shift, cap)
                    if c >= n:
                        break
                    w = weight(kind, theta, wkey, t)
                    for k in range(b.shape[1]):
                        if event:
                            if b[c, k] != 0:
                                out[i, k] += w
                        else:
                            out[i, k] += w * b[c, k]
                    t += _ONE
            return 0
    return body


def jitc_scalar_body(transpose, event, matrix):
    """Every entry weighs ``theta[0]``."""
    return _body('scalar', transpose, event, matrix)


def jitc_normal_body(transpose, event, matrix):
    """Entry weights ``theta[0] + theta[1] * z``, ``z`` standard normal."""
    return _body('normal', transpose, event, matrix)


def jitc_uniform_body(transpose, event, matrix):
    """Entry weights ``theta[0] * (1 - x) + theta[1] * x``, ``x`` uniform in (0, 1)."""
    return _body('uniform', transpose, event, matrix)
