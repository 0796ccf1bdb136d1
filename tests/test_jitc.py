"""The JITC family (JITCScalar/Normal/Uniform, R and C): one matrix everywhere.

A JITC matrix is a function of (class, shape, theta, prob, seed); it is never
stored. The contract tested here:

* Every operation (products with float and event operands on both sides, ``vmap``,
  ``todense``, ``tocsr``/``tocoo``/``tocsc``, ``.T``) on both backends ('numba',
  'jax') describes one matrix: the structure (which entries exist) is identical
  bit for bit and equal to an independent numpy reference of the generator
  (``jitc_reference.py``), the weights agree to float tolerance.
* The per-call integer parameters (seed key, ``m_inv``, ``shift``) and the
  fixed-point ``E(u)`` agree with their exact definitions; the tables are
  correctly rounded.
* The same parameters give the same matrix in a fresh process; different seeds
  give different matrices; ``...C`` of shape (m, n) is ``...R`` of shape (n, m)
  transposed.
* Statistics: each entry is present with probability ``P / 2**32``
  independently (per-row counts, column marginals, gaps, neighbouring rows and
  seeds), normal and uniform weights have the right distribution.
* Operations: scalar ``*``/``/``, ``with_data``, ``-m``, gradients (weights and
  spikes), ``vmap`` over seeds, construction inside ``jit``, conversions with
  ``nnz``, ``entry_counts``/``nnz``, ``sum``, units, ``repr``.
* Bad input raises ``ValueError``/``TypeError`` naming the argument, what was
  expected and what was received.

Cost: every new (class, shape, dtype) compiles the generator loops (seconds on
2 cores), so the property tests draw shapes from a small pool per class and run
all paths under one ``jit`` per key; parameters, seeds and operands vary freely
(they are traced).
"""

import functools
import json
import math
import os
import re
import subprocess
import sys

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings, strategies as st

import brainevent as be
import jitc_reference as ref
from brainevent.formats import _jitc_numba
from brainevent.formats._jitc_random import (LN2_TABLE, LN_TABLE, skip as jax_skip,
                                             structure_params, uniform01)
from strategies import precision

CLASSES = [be.JITCScalarR, be.JITCScalarC, be.JITCNormalR, be.JITCNormalC,
           be.JITCUniformR, be.JITCUniformC]
class_param = pytest.mark.parametrize('cls', CLASSES, ids=lambda c: c.__name__)
MASK32 = (1 << 32) - 1
RTOL = {np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-9}


def dist_of(cls) -> str:
    return cls.dist.name


def build(cls, shape, prob, theta, seed, **kwargs):
    return cls(*shape, prob, *theta, seed, **kwargs)


# ---------------------------------------------------------------------------
# The reference, with the package's integer reciprocal once it is checked
# ---------------------------------------------------------------------------

_structure_params = jax.jit(structure_params)


def int_params(prob, seed):
    """The package's ``(m_inv, shift)``, checked against the exact definition."""
    key, m_inv, shift = (int(v) for v in _structure_params(np.float32(prob), np.uint32(seed)))
    params = ref.Params(prob, seed)
    assert key == params.seed_key, (prob, seed)
    assert params.rel_error(m_inv, shift) < 1e-8, (prob, m_inv, shift, params.m_inv_exact)
    return m_inv, shift


@functools.lru_cache(maxsize=256)
def expected(cls, shape, prob, seed, theta, dtype):
    """``(dense, mask, bases, bound, basis_bounds)``: reference values and error bounds.

    ``bound`` bounds the error of each entry: ``rtol * sum_k |theta_k basis_k|``
    plus, in float32, the difference between variates rounded as float32 or
    computed in float64 (float32 rounds the Box-Muller steps). ``basis_bounds`` does the same
    for each basis matrix.
    """
    dtype = np.dtype(dtype)
    dist, orient = dist_of(cls), cls.orientation
    ip = int_params(prob, seed)
    dense, mask, bases = ref.reference(shape, prob, seed, dist, theta, orient, ip)
    rtol = RTOL[dtype]
    basis_bounds = [rtol * np.abs(b) for b in bases]
    bound = rtol * sum((abs(t) * np.abs(b) for t, b in zip(theta, bases)), np.zeros(shape))
    if dtype == np.float32 and dist != 'scalar':
        dense32, _, bases32 = ref.reference(shape, prob, seed, dist, theta, orient, ip, np.float32)
        bound = bound + np.abs(dense - dense32)
        basis_bounds = [bb + np.abs(b - b32) for bb, b, b32 in zip(basis_bounds, bases, bases32)]
    return dense, mask, bases, bound, basis_bounds


def assert_within(actual, want, bound, what):
    actual = np.asarray(actual, np.float64)
    want = np.asarray(want, np.float64)
    assert actual.shape == want.shape, f"{what}: shape {actual.shape} != {want.shape}"
    bad = ~(np.abs(actual - want) <= bound)
    if bad.any():
        where = np.argwhere(bad)[:4].tolist()
        limit = np.broadcast_to(bound, bad.shape)[bad][:4]
        raise AssertionError(f"{what}: {int(bad.sum())} values off at {where}: got "
                             f"{actual[bad][:4]}, want {want[bad][:4]}, bound {limit}")


# ---------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------

SPECIAL_PROBS = [0.0, 1.0, 0.5, 0.05, 0.9, 0.999, 1e-3, 3 * 2.0 ** -33, 2.0 ** -33,
                 1 - 2.0 ** -25, 1 - 2.0 ** -24]
probs = st.one_of(st.sampled_from(SPECIAL_PROBS), st.floats(0, 1))
seeds = st.one_of(st.sampled_from([0, 1, MASK32, 2 ** 31]), st.integers(0, MASK32))


@st.composite
def thetas(draw, dist):
    """Weight parameters whose entry weights stay away from zero (structure = nonzeros)."""
    sign = draw(st.sampled_from([-1.0, 1.0]))
    mag = st.floats(0.1, 3.0)
    if dist == 'scalar':
        return (sign * draw(mag),)
    if dist == 'uniform':
        return (sign * draw(mag), sign * draw(mag))
    mu = draw(st.floats(0.5, 3.0))
    return (sign * mu, draw(st.floats(0.0, mu / 8)))


# ---------------------------------------------------------------------------
# 1. The generator's constants and per-call parameters against their definitions
# ---------------------------------------------------------------------------

def test_tables_are_correctly_rounded():
    """LN_TABLE = round(ln(1 + k/4096) 2**32) and LN2_TABLE = round(k ln2 2**27), exactly."""
    exact_ln, exact_ln2 = np.array(ref.ln_table()), np.array(ref.ln2_table())
    assert LN_TABLE.shape == (4097,) and LN_TABLE.dtype == np.uint32
    assert np.array_equal(LN_TABLE.astype(np.int64), exact_ln)
    assert np.array_equal(LN2_TABLE.astype(np.int64), exact_ln2)
    assert LN_TABLE[0] == 0 and int(LN_TABLE[-1]) == round(math.log(2) * 2 ** 32)
    assert np.all(np.diff(LN_TABLE.astype(np.int64)) > 0)


def _sample_u():
    """Edge draws (0, 1, powers of two and neighbours, table knots) and random ones."""
    edges = {0, 1, 2, 3, MASK32, MASK32 - 1, 0xFFFFFF00, 0x80000000, 0x7FFFFFFF}
    for z in range(32):
        edges.update({1 << z, (1 << z) + 1, max((1 << z) - 1, 0), ((2 << z) - 1) & MASK32})
    for z in (0, 1, 7, 20, 30):  # table knots and interval midpoints (worst interpolation)
        for k in (0, 1, 2, 100, 2047, 4094, 4095):
            for rem in (0, 1 << 19, (1 << 20) - 1):
                frac = (k << 20) | rem
                v = ((1 << 32) | frac) >> (z + 1)
                edges.add(v & MASK32)
    rng = np.random.default_rng(1)
    rand = rng.integers(0, 1 << 32, size=20000, dtype=np.uint64)
    small = rng.integers(0, 1 << 12, size=2000, dtype=np.uint64)  # large E, many leading zeros
    return np.array(sorted(edges | set(rand.tolist()) | set(small.tolist())), np.uint64)


def test_fixed_point_e_matches_definition_and_backends():
    """E(u) in 27-bit fixed point: the JAX and numba skips give the reference's bits,
    within 2e-8 of -ln((u|1)/2**32), and at least 1 (so prob == 0 connects nothing)."""
    us = _sample_u()
    want = np.array([ref.fixed_e(int(v)) for v in us], np.int64)
    # skip(u, m_inv=1, shift=0, cap=2**32-1) is E itself
    got_jax = np.asarray(jax.jit(jax_skip)(jnp.asarray(us.astype(np.uint32)), jnp.uint32(1),
                                           jnp.uint32(0), np.uint32(MASK32))).astype(np.int64)
    assert np.array_equal(got_jax, want)
    one, zero, cap = np.uint64(1), np.uint64(0), np.uint64(MASK32)
    got_numba = np.array([_jitc_numba.skip(np.uint64(v), one, zero, cap) for v in us[::7]])
    assert np.array_equal(got_numba, want[::7])
    exact = np.array([ref.exact_e(int(v)) for v in us])
    err = np.abs(want / 2.0 ** 27 - exact)
    assert err.max() < 2e-8, (err.max(), us[np.argmax(err)])
    assert want.min() >= 1


PARAM_PROBS = sorted(set(
    [2.0 ** -32, 1.5 * 2.0 ** -32, 2.0 ** -31, 1e-9, 1e-6, 1e-3, 0.01, 0.1, 0.25, 0.3, 1 / 3,
     0.5, float(np.nextafter(np.float32(0.5), 0)), float(np.nextafter(np.float32(0.5), 1)),
     0.6, 0.75, 0.9, 0.99, 0.999, 0.9999, 1 - 2.0 ** -20, 1 - 2.0 ** -24]
    + [float(p) for p in np.float32(np.random.default_rng(2).random(60))]
    + [float(np.float32(1 - 2.0 ** -k)) for k in range(1, 25)]
    + [float(np.float32(2.0 ** -k)) for k in range(1, 33)]))


def test_structure_params_against_exact_definition():
    """(seed key, m_inv, shift) from decimal arithmetic: key exact, shift exact, m_inv to 1e-8."""
    for seed in (0, 1, 12345, 2 ** 31, MASK32):
        int_params(0.3, seed)  # asserts the key and the reciprocal
    vector = jax.jit(jax.vmap(structure_params))
    out = np.asarray(vector(jnp.asarray(PARAM_PROBS, jnp.float32),
                            jnp.zeros(len(PARAM_PROBS), jnp.uint32)))
    worst = 0.0
    for p, (_, m_inv, shift) in zip(PARAM_PROBS, out):
        params = ref.Params(p, 0)
        err = params.rel_error(int(m_inv), int(shift))
        assert err < 1e-8, (p, int(m_inv), int(shift), params.shift, params.m_inv_exact)
        worst = max(worst, err)
    assert worst > 0  # the check compares real numbers, not two copies of one computation
    # the special cases: prob >= 1 skips nothing, P == 0 skips past every row
    special = np.asarray(vector(jnp.asarray([1.0, 0.0, 2.0 ** -34], jnp.float32),
                                jnp.zeros(3, jnp.uint32)))
    assert special[:, 1:].tolist() == [[0, 0], [MASK32, 0], [MASK32, 0]]


def test_structure_params_against_float64():
    """m_inv * 2**(27 - shift) equals float64 1/lam to 1e-8 relative over many probs."""
    rng = np.random.default_rng(3)
    ps = np.concatenate([np.logspace(-9.6, -0.31, 1500), np.linspace(0.5, 1 - 2 ** -24, 1500),
                         rng.random(1500), 1 - np.logspace(-7.2, -0.31, 500)]).astype(np.float32)
    ps = ps[(ps > 0) & (ps < 1)]
    out = np.asarray(jax.jit(jax.vmap(structure_params))(jnp.asarray(ps),
                                                         jnp.zeros(ps.size, jnp.uint32)))
    P = np.round(ps.astype(np.float64) * 2.0 ** 32)
    keep = P > 0
    lam = -np.log1p(-P[keep] / 2.0 ** 32)
    approx = out[keep, 1].astype(np.float64) * np.exp2(27.0 - out[keep, 2].astype(np.float64))
    rel = np.abs(approx * lam - 1)
    assert rel.max() < 1e-8, (rel.max(), ps[keep][np.argmax(rel)])
    # the mantissa is normalised: 2**31 <= m_inv < 2**32
    assert np.all(out[keep, 1] >= 2 ** 31)


def test_prob_is_read_as_float32_and_rounded_to_2_pow_minus_32():
    """P = round(float32(prob) * 2**32), ties to even: probabilities below 2**-33 give nothing."""
    assert ref.prob_bits(2.0 ** -33) == 0 and ref.prob_bits(3 * 2.0 ** -33) == 2
    assert ref.prob_bits(1 - 2.0 ** -25) == 1 << 32  # float32 rounds it to 1
    out = np.asarray(jax.jit(jax.vmap(structure_params))(
        jnp.asarray([2.0 ** -33, 3 * 2.0 ** -33, 5 * 2.0 ** -33], jnp.float32),
        jnp.zeros(3, jnp.uint32)))
    assert out[0, 1] == MASK32 and out[0, 2] == 0  # P == 0: empty
    for row, P in zip(out[1:], (2, 2)):  # 1.5 -> 2, 2.5 -> 2
        assert ref.Params(P / 2.0 ** 32, 0).rel_error(int(row[1]), int(row[2])) < 1e-8


def test_integer_reciprocal_draws_the_exact_structure():
    """Skips with the package's (m_inv, shift) equal floor(E / lam) with the exact lam
    on every draw of these matrices (the approximation is invisible at this size)."""
    for prob, seed, shape in [(0.3, 5, (40, 60)), (0.97, 6, (30, 50)), (0.004, 7, (300, 200)),
                              (0.5, 8, (40, 60)), (0.7, MASK32, (30, 40))]:
        ip = int_params(prob, seed)
        fast = ref.reference(shape, prob, seed, int_params=ip)[1]
        exact = ref.reference(shape, prob, seed)[1]
        assert np.array_equal(fast, exact)
        assert fast.any()


def test_effective_probability_edges():
    """prob 0 connects nothing, prob 1 everything, prob < 2**-33 nothing (reference and package)."""
    f = jax.jit(lambda m: m.todense())
    for prob, want in [(0.0, 0), (1.0, 1), (2.0 ** -34, 0), (1 - 2.0 ** -26, 1)]:
        dense = np.asarray(f(be.JITCScalarR(7, 11, prob, 1.0, 3)))
        assert np.all(dense == want), prob
        assert np.all(ref.reference((7, 11), prob, 3)[1] == bool(want))


# ---------------------------------------------------------------------------
# 2. Every path describes one matrix (property tests)
# ---------------------------------------------------------------------------

def _paths(m, x, y, X, Y, ex, ey):
    """Every way to see ``m``, under one jit (what each should equal: :func:`_expect`)."""
    k, n = m.shape
    dt = x.dtype
    In, Ik = jnp.eye(n, dtype=dt), jnp.eye(k, dtype=dt)
    out = {'todense': m.todense(),
           'T.todense().T': m.T.todense().T,
           'tocsr': m.tocsr(nnz=k * n).todense(),
           'tocoo': m.tocoo(nnz=k * n).todense(),
           'tocsc': m.tocsc(nnz=k * n).todense()}
    w = m.with_backend('numba')
    out.update({
        'numba W@I': w @ In, 'numba I@W': Ik @ w,
        'numba W@Ie': w @ be.BinaryArray(In != 0), 'numba Ie@W': be.BinaryArray(Ik) @ w,
        'numba W@x': w @ x, 'numba y@W': y @ w,
        'numba W@ex': w @ be.BinaryArray(ex), 'numba ey@W': be.BinaryArray(ey) @ w,
        'numba indexed ey@W': be.IndexedBinary1d.from_dense(ey) @ w,
        'numba W@X': w @ X, 'numba Y@W': Y @ w,
        'numba vmap W@x': jax.vmap(lambda v: w @ v)(X.T),
        'numba vmap x@W': jax.vmap(lambda v: v @ w)(Y),
    })
    w = m.with_backend('jax')  # one call per code path of the JAX kernel
    out.update({'jax W@I': w @ In, 'jax Ie@W': be.BinaryArray(Ik != 0) @ w,
                'jax W@ex': w @ be.BinaryArray(ex), 'jax y@W': y @ w})
    return out


_paths_jit = jax.jit(_paths)

STRUCTURE_KEYS = ['todense', 'T.todense().T', 'tocsr', 'tocoo', 'tocsc', 'numba W@I',
                  'numba I@W', 'numba W@Ie', 'numba Ie@W', 'jax W@I', 'jax Ie@W']


def _expect(dense, bound, x, y, X, Y, ex, ey):
    """Reference value and error bound of every output of :func:`_paths`."""
    exf, eyf = (ex != 0).astype(float), (ey != 0).astype(float)
    ax, ay, aX, aY = np.abs(x), np.abs(y), np.abs(X), np.abs(Y)
    whole = (dense, bound)
    return {
        **{key: whole for key in STRUCTURE_KEYS},
        'numba W@x': (dense @ x, bound @ ax), 'numba y@W': (y @ dense, ay @ bound),
        'numba W@ex': (dense @ exf, bound @ exf), 'numba ey@W': (eyf @ dense, eyf @ bound),
        'numba indexed ey@W': (eyf @ dense, eyf @ bound),
        'numba W@X': (dense @ X, bound @ aX), 'numba Y@W': (Y @ dense, aY @ bound),
        'numba vmap W@x': ((dense @ X).T, (bound @ aX).T),
        'numba vmap x@W': (Y @ dense, aY @ bound),
        'jax W@ex': (dense @ exf, bound @ exf), 'jax y@W': (y @ dense, ay @ bound),
    }


# Each new (class, shape, dtype) compiles every path (seconds on 2 cores), so shapes come
# from a small pool and the dtype follows from (orientation, shape): every class meets both
# dtypes, and two real compilations per class (the empty shapes compile in a fraction).
PROPERTY_SHAPES = [(0, 5), (4, 0), (1, 1), (5, 8), (5, 8), (5, 8)]  # mostly the general one


def property_dtype(cls, shape):
    """R classes: float32, but float64 for 1x1; C classes the other way round."""
    wide = (cls.orientation == 'C') != (shape == (1, 1))
    return np.dtype(np.float64 if wide else np.float32)


@class_param
@settings(max_examples=10)
@given(data=st.data())
def test_every_path_is_one_matrix(cls, data):
    """todense, tocsr/tocoo/tocsc, .T, products (float/event/indexed, both sides, vector
    and matrix, vmap) on numba and JAX: same structure bit for bit, same values, all
    equal to the numpy reference."""
    shape = data.draw(st.sampled_from(PROPERTY_SHAPES), 'shape')
    dtype = property_dtype(cls, shape)
    prob, seed = data.draw(probs, 'prob'), data.draw(seeds, 'seed')
    theta = data.draw(thetas(dist_of(cls)), 'theta')
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 31), 'rng'))
    k, n = shape
    x, y = rng.normal(size=n).astype(dtype), rng.normal(size=k).astype(dtype)
    X, Y = rng.normal(size=(n, 3)).astype(dtype), rng.normal(size=(3, k)).astype(dtype)
    ex = np.where(rng.random(n) < 0.5, rng.uniform(0.5, 2, n), 0).astype(dtype)  # values ignored
    ey = rng.random(k) < 0.5
    with precision(dtype):
        m = build(cls, shape, prob, theta, seed, dtype=dtype)
        out = jax.device_get(_paths_jit(m, x, y, X, Y, ex, ey))
    dense, mask, _, bound, _ = expected(cls, shape, prob, seed, theta, dtype)
    want = _expect(dense, bound, x.astype(float), y.astype(float), X.astype(float),
                   Y.astype(float), ex, ey)
    assert set(want) == set(out)
    for key, value in out.items():
        assert value.dtype == dtype, key
        assert_within(value, *want[key], what=key)
    for key in STRUCTURE_KEYS:
        assert np.array_equal(out[key] != 0, mask), f"{key}: structure differs from the reference"
    # the transposed view draws the very same numbers
    assert np.array_equal(out['todense'], out['T.todense().T'])


@pytest.mark.parametrize('cls', [be.JITCNormalR, be.JITCUniformC], ids=lambda c: c.__name__)
def test_larger_matrices_match_reference_on_both_backends(cls):
    """A few thousand entries at several probabilities: structure bit for bit on numba
    (products with the identity) and JAX (todense), values within tolerance."""
    shape = (37, 53)
    f = jax.jit(lambda m: (m.todense(), m.with_backend('numba') @ jnp.eye(shape[1]),
                           jnp.eye(shape[0]) @ m.with_backend('numba')))
    total = 0
    for prob, seed in [(0.02, 1), (0.3, 2), (0.5, MASK32), (0.93, 4), (1.0, 5)]:
        theta = (1.5, 0.2) if dist_of(cls) == 'normal' else (-2.0, -0.5)
        dense, mask, _, bound, _ = expected(cls, shape, prob, seed, theta, np.dtype(np.float32))
        outs = f(build(cls, shape, prob, theta, seed))
        for name, value in zip(('todense', 'numba W@I', 'numba I@W'), outs):
            assert np.array_equal(np.asarray(value) != 0, mask), (prob, name)
            assert_within(value, dense, bound, f"{name} prob={prob}")
        total += mask.sum()
    assert total > 3000


def test_rows_do_not_depend_on_the_number_of_rows_or_columns():
    """Row i of an R matrix is drawn from (seed, i) alone: a (m, n) matrix is the
    top-left block of a larger one (also in the package, not only the reference)."""
    big = be.JITCUniformR(9, 13, 0.4, 0.5, 1.5, 77)
    small = be.JITCUniformR(5, 8, 0.4, 0.5, 1.5, 77)
    f = jax.jit(lambda m: m.with_backend('numba') @ jnp.eye(m.shape[1]))
    assert np.array_equal(np.asarray(f(big))[:5, :8], np.asarray(f(small)))


# ---------------------------------------------------------------------------
# 3. Reproducibility: the same matrix in a fresh process
# ---------------------------------------------------------------------------

FRESH_SNIPPET = r'''
import hashlib, json, sys
import numpy as np, jax, jax.numpy as jnp, brainevent as be
CASES = {'scalar': ('JITCScalarR', (37, 23), 0.3, (0.5,), 12345),
         'normal': ('JITCNormalR', (29, 41), 0.2, (0.1, 1.5), 4294967295),
         'uniformC': ('JITCUniformC', (31, 17), 0.7, (-1.0, 2.0), 0)}

def operands(shape):
    return (np.linspace(-1, 1, shape[1], dtype=np.float32), np.arange(shape[0]) % 3 == 0)

def results(names, dense):
    mats = {k: getattr(be, CASES[k][0])(*CASES[k][1], CASES[k][2], *CASES[k][3], CASES[k][4])
            for k in names}
    out = {}
    if dense:
        for k, d in jax.jit(lambda ms: {k: m.todense() for k, m in ms.items()})(mats).items():
            d = np.asarray(d)
            out[k + ' dense'] = [hashlib.sha256(d.tobytes()).hexdigest(), int(np.count_nonzero(d))]
    for k, m in mats.items():
        x, spikes = operands(m.shape)
        out[k + ' W@x'] = np.asarray(be.matmul(m, jnp.asarray(x), backend='numba')).tolist()
        out[k + ' s@W'] = np.asarray(be.matmul(be.BinaryArray(jnp.asarray(spikes)), m,
                                               backend='numba')).tolist()
    return out

if __name__ == '__main__':
    print(json.dumps(results(sys.argv[1].split(','), sys.argv[2] == 'dense')))
'''


@pytest.fixture(scope='module')
def fresh_processes(tmp_path_factory):
    """Results of fresh processes sharing a new kernel cache: two compile (and cache) the
    kernels of different distributions, in parallel; a third loads them all from the cache."""
    env = dict(os.environ, BRAINEVENT_CACHE_DIR=str(tmp_path_factory.mktemp('kernels')),
               JAX_PLATFORMS='cpu')

    def start(names, dense):
        return subprocess.Popen([sys.executable, '-c', FRESH_SNIPPET, names, dense], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish(proc):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        return json.loads(out.strip().splitlines()[-1])

    first = [finish(p) for p in (start('scalar', 'no'), start('normal,uniformC', 'no'))]
    return {'scalar': first[0], 'normal,uniformC': first[1],
            'all': finish(start('scalar,normal,uniformC', 'dense'))}


def _fresh_namespace():
    namespace = {'__name__': 'fresh_snippet'}
    exec(FRESH_SNIPPET, namespace)
    return namespace


def test_same_matrix_in_a_fresh_process(fresh_processes):
    """Digests of todense and numba products from a fresh process equal this process's."""
    ours = _fresh_namespace()['results'](['scalar', 'normal', 'uniformC'], True)
    theirs = fresh_processes['all']
    assert set(ours) == set(theirs)
    for key in ours:
        assert ours[key] == theirs[key], key  # bit for bit
    assert all(ours[k + ' dense'][1] > 0 for k in ('scalar', 'normal', 'uniformC'))


def test_numba_kernels_of_different_distributions_do_not_collide(fresh_processes):
    """Regression: kernels compiled and cached by different processes, then loaded together,
    keep their own code. (Before the numba bodies got unique names, a process that loaded
    the scalar and the normal kernels from the cache ran one body for both: JITCNormal
    products on numba used w_mu alone, and structures of other classes got mixed.)"""
    namespace = _fresh_namespace()
    for name, (cls_name, shape, prob, theta, seed) in namespace['CASES'].items():
        cls = getattr(be, cls_name)
        dense, _, _, bound, _ = expected(cls, shape, prob, seed, theta, np.dtype(np.float32))
        x, spikes = namespace['operands'](shape)
        sf = spikes.astype(float)
        source = 'scalar' if name == 'scalar' else 'normal,uniformC'
        for where in (source, 'all'):
            got = fresh_processes[where]
            assert_within(got[name + ' W@x'], dense @ x, bound @ np.abs(x), f'{name} W@x ({where})')
            assert_within(got[name + ' s@W'], sf @ dense, sf @ bound, f'{name} s@W ({where})')


@class_param
def test_different_seeds_give_different_matrices_and_r_c_are_transposes(cls):
    """Seeds s, s+1 and s ^ 2**31 differ; C(m, n) with a seed is R(n, m) with it, transposed."""
    shape = OPS_SHAPE[cls]
    theta = THETA[dist_of(cls)]
    base = np.asarray(_ops(build(cls, shape, 0.3, theta, 1000))['dense'])
    for other in (1001, 1000 ^ 2 ** 31, 999):
        dense = np.asarray(_ops(build(cls, shape, 0.3, theta, other))['dense'])
        assert np.count_nonzero((dense != 0) != (base != 0)) > 0.1 * base.size
    partner = CLASS_BY[dist_of(cls), 'C' if cls.orientation == 'R' else 'R']
    twin = build(partner, shape[::-1], 0.3, theta, 1000)
    assert type(twin.T) is cls
    assert np.array_equal(np.asarray(_ops(twin)['dense']).T, base)


# ---------------------------------------------------------------------------
# 4. Statistics (fixed seeds and sizes; bounds at 6 sigma)
# ---------------------------------------------------------------------------

STAT_SHAPE = (3000, 2000)
_stat_dense = jax.jit(lambda m: m.todense())


@functools.lru_cache(maxsize=8)
def stat_mask(prob, seed):
    dense = np.asarray(_stat_dense(be.JITCScalarR(*STAT_SHAPE, prob, 1.0, seed)))
    assert set(np.unique(dense).tolist()) <= {0.0, 1.0}
    return dense != 0


def p_eff(prob):
    return ref.prob_bits(prob) / 2.0 ** 32


def chi2_bound(df):
    return df + 6 * math.sqrt(2 * df)


def binned_chi2(observed, probabilities):
    n = observed.sum()
    exp = n * probabilities
    assert exp.min() >= 5, exp.min()
    return float(((observed - exp) ** 2 / exp).sum()), len(observed) - 1


STAT_PROBS = [0.001, 0.05, 0.5, 0.95]


@pytest.mark.parametrize('prob', STAT_PROBS)
def test_row_counts_are_binomial(prob):
    mask = stat_mask(prob, 11)
    m, n = mask.shape
    p = p_eff(prob)
    q = 1 - p
    counts = mask.sum(1).astype(float)
    mean, var = n * p, n * p * q
    assert abs(counts.mean() - mean) <= 6 * math.sqrt(var / m), (counts.mean(), mean)
    mu4 = n * p * q * (1 + 3 * (n - 2) * p * q)
    se_var = math.sqrt((mu4 - var ** 2 * (m - 3) / (m - 1)) / m)
    assert abs(counts.var(ddof=1) - var) <= 6 * se_var, (counts.var(ddof=1), var)
    # the whole distribution: chi-square over bins of expected size >= 20
    ks = np.arange(n + 1)
    pmf = scipy.stats.binom.pmf(ks, n, p)
    edges = [0]
    acc = 0.0
    for k in range(n + 1):
        acc += pmf[k]
        if acc * m >= 20 and pmf[k + 1:].sum() * m >= 20:
            edges.append(k + 1)
            acc = 0.0
    edges.append(n + 1)
    observed = np.histogram(counts, bins=edges)[0]
    probabilities = np.array([pmf[a:b].sum() for a, b in zip(edges[:-1], edges[1:])])
    stat, df = binned_chi2(observed, probabilities / probabilities.sum())
    assert stat <= chi2_bound(df), (stat, df)


@pytest.mark.parametrize('prob', STAT_PROBS)
def test_column_marginals_are_binomial(prob):
    """Each column's count ~ Binomial(num_pre, p): chi-square over columns, over
    20 column blocks, and the first and last columns on their own."""
    mask = stat_mask(prob, 11)
    m, n = mask.shape
    p = p_eff(prob)
    col = mask.sum(0).astype(float)
    var = m * p * (1 - p)
    stat = float(((col - m * p) ** 2).sum() / var)
    assert abs(stat - n) <= 6 * math.sqrt(2 * n), (stat, n)
    blocks = col.reshape(20, -1).sum(1)  # 20 blocks of adjacent columns
    block_stat = float(((blocks - m * p * n / 20) ** 2).sum() / (var * n / 20))
    assert block_stat <= chi2_bound(20), block_stat
    for j in (0, 1, n - 1):
        assert abs(col[j] - m * p) <= 6 * math.sqrt(var), (j, col[j], m * p)


@pytest.mark.parametrize('prob', STAT_PROBS)
def test_gaps_are_geometric(prob):
    """Gaps between consecutive entries of a row (and before the first) ~ Geometric(p),
    counted where the row is long enough to show every binned value."""
    mask = stat_mask(prob, 11)
    m, n = mask.shape
    p = p_eff(prob)
    q = 1 - p
    rows, cols = np.nonzero(mask)
    # starts: -1 in every row, then every entry; the gap is to the next entry of the row
    start_rows = np.concatenate([np.arange(m), rows])
    start_cols = np.concatenate([np.full(m, -1), cols])
    order = np.lexsort((start_cols, start_rows))
    start_rows, start_cols = start_rows[order], start_cols[order]
    nxt = np.full(start_cols.shape, np.iinfo(np.int64).max // 2)
    same = start_rows[1:] == start_rows[:-1]
    nxt[:-1][same] = start_cols[1:][same]
    gaps = nxt - start_cols - 1
    # bins of (nearly) equal probability; values up to the last edge must fit in the row
    cut = min(n // 2, int(math.log(1e-3) / math.log(q)) if q > 0 else 1)
    quantiles = np.unique(np.floor(np.log1p(-np.linspace(0, 1 - q ** cut, 21)[1:-1])
                                   / math.log(q)).astype(int)) if q > 0 else np.array([])
    edges = np.unique(np.concatenate([[0], quantiles + 1, [cut]])).astype(int)
    keep = start_cols + cut < n
    g = gaps[keep]
    bins = list(zip(edges[:-1], edges[1:]))
    observed = np.array([np.count_nonzero((g >= a) & (g < b)) for a, b in bins]
                        + [np.count_nonzero(g >= edges[-1])])
    probabilities = np.array([q ** a - q ** b for a, b in bins] + [q ** edges[-1]])
    stat, df = binned_chi2(observed, probabilities)
    assert stat <= chi2_bound(df), (stat, df, observed, probabilities * observed.sum())
    assert len(observed) >= 3


def _overlap_test(total, expected_mean, variance):
    assert abs(total - expected_mean) <= 6 * math.sqrt(variance), (total, expected_mean,
                                                                    math.sqrt(variance))


@pytest.mark.parametrize('prob', STAT_PROBS)
def test_neighbouring_rows_columns_and_seeds_are_independent(prob):
    """Overlaps of rows i and i+1, i and i+2, columns j and j+1 of a row, and of seeds
    s and s+1 have the means and variances of independent Bernoulli(p) entries."""
    a = stat_mask(prob, 11)
    m, n = a.shape
    p = p_eff(prob)
    p2, p3, p4 = p ** 2, p ** 3, p ** 4
    for lag in (1, 2):
        total = int(np.count_nonzero(a[lag:] & a[:-lag]))
        pairs = m - lag
        var = pairs * n * p2 * (1 - p2) + 2 * (pairs - lag) * n * (p3 - p4)
        _overlap_test(total, pairs * n * p2, var)
    total = int(np.count_nonzero(a[:, 1:] & a[:, :-1]))
    var = m * ((n - 1) * p2 * (1 - p2) + 2 * (n - 2) * (p3 - p4))
    _overlap_test(total, m * (n - 1) * p2, var)
    b = stat_mask(prob, 12)
    total = int(np.count_nonzero(a & b))
    _overlap_test(total, m * n * p2, m * n * p2 * (1 - p2))
    # and the same row of the next seed does not predict the neighbour row
    total = int(np.count_nonzero(a[1:] & b[:-1]))
    _overlap_test(total, (m - 1) * n * p2, (m - 1) * n * p2 * (1 - p2))


def _weights_and_gaps(cls, theta, prob, seed):
    dense = np.asarray(_stat_dense(cls(*STAT_SHAPE, prob, *theta, seed)))
    mask = stat_mask(prob, seed)
    assert np.array_equal(dense != 0, mask)  # same structure as the scalar matrix
    rows, cols = np.nonzero(mask)
    w = dense[rows, cols].astype(np.float64)
    same = rows[1:] == rows[:-1]
    return w, same


def test_normal_weights_are_normal():
    mu, sigma, prob = 1.5, 0.5, 0.05
    w, same = _weights_and_gaps(be.JITCNormalR, (mu, sigma), prob, 11)
    N = w.size
    assert N > 200000
    assert abs(w.mean() - mu) <= 6 * sigma / math.sqrt(N)
    assert abs(w.std() - sigma) <= 6 * sigma / math.sqrt(2 * N)
    z = (w - mu) / sigma
    ks = scipy.stats.kstest(z, 'norm').statistic
    assert ks * math.sqrt(N) <= 2.5, ks  # P(K > 2.5) ~ 1e-5
    assert abs(scipy.stats.skew(z)) <= 6 * math.sqrt(6 / N)
    assert abs(scipy.stats.kurtosis(z)) <= 6 * math.sqrt(24 / N)
    tail = np.count_nonzero(np.abs(z) > 3.5)  # Box-Muller tails are there (~140 expected)
    tail_p = 2 * scipy.stats.norm.sf(3.5)
    assert abs(tail - N * tail_p) <= 6 * math.sqrt(N * tail_p)
    # consecutive weights of a row are uncorrelated
    r = np.corrcoef(z[1:][same], z[:-1][same])[0, 1]
    assert abs(r) <= 6 / math.sqrt(same.sum())


def test_uniform_weights_are_uniform():
    low, high, prob = -0.5, 2.0, 0.05
    w, same = _weights_and_gaps(be.JITCUniformR, (low, high), prob, 11)
    N = w.size
    width = high - low
    slack = 1e-6 * width
    assert w.min() >= low - slack and w.max() <= high + slack
    assert abs(w.mean() - (low + high) / 2) <= 6 * width / math.sqrt(12 * N)
    var = width ** 2 / 12
    se_var = math.sqrt((width ** 4 / 80 - var ** 2) / N)
    assert abs(w.var() - var) <= 6 * se_var
    x = (w - low) / width
    ks = scipy.stats.kstest(x, 'uniform').statistic
    assert ks * math.sqrt(N) <= 2.5, ks
    r = np.corrcoef(x[1:][same], x[:-1][same])[0, 1]
    assert abs(r) <= 6 / math.sqrt(same.sum())


# ---------------------------------------------------------------------------
# 5. Operations
# ---------------------------------------------------------------------------

CLASS_BY = {(cls.dist.name, cls.orientation): cls for cls in CLASSES}
OPS_SHAPE = {cls: (6, 9) if cls.orientation == 'R' else (9, 6) for cls in CLASSES}
THETA = {'scalar': (0.75,), 'normal': (1.25, 0.5), 'uniform': (-0.5, 2.0)}


@jax.jit
def _ops(m):
    return {'dense': m.todense(), 'T': m.T.todense().T, 'sum': m.sum(), 'sum0': m.sum(0),
            'sum1': m.sum(1), 'counts': m.entry_counts(), 'data': m.data}


@class_param
def test_scalar_multiplication_division_and_with_data(cls):
    shape, theta = OPS_SHAPE[cls], THETA[dist_of(cls)]
    m = build(cls, shape, 0.4, theta, 21)
    dense, mask, bases, bound, _ = expected(cls, shape, 0.4, 21, theta, np.dtype(np.float32))
    assert_within(_ops(m)['dense'], dense, bound, 'dense')
    for name, other, factor in [('m * 2.5', m * 2.5, 2.5), ('2.5 * m', 2.5 * m, 2.5),
                                ('m / 4', m / 4, 0.25),
                                ('m * jnp.float32(3)', m * jnp.float32(3), 3.0)]:
        assert type(other) is cls and other.shape == m.shape, name
        assert int(other.seed) == 21 and float(other.prob) == np.float32(0.4), name
        assert_within(_ops(other)['dense'], factor * dense, factor * bound, name)
    new_theta = tuple(2 * t + 0.25 for t in theta)
    new_dense, _, _, new_bound, _ = expected(cls, shape, 0.4, 21, new_theta, np.dtype(np.float32))
    scalar_form = (new_theta[0],) if len(theta) == 1 else ()
    for data in (jnp.asarray(new_theta), list(new_theta)) + scalar_form:
        other = m.with_data(data)
        assert type(other) is cls and int(other.seed) == 21
        assert_within(_ops(other)['dense'], new_dense, new_bound, f'with_data({data!r})')
    # negative scalars: the weights are linear in theta (a normal matrix gets w_sigma < 0)
    for name, other, factor in [('-m', -m, -1.0), ('m * -2', m * -2.0, -2.0),
                                ('m / -4', m / -4.0, -0.25), ('+m', +m, 1.0)]:
        assert type(other) is cls, name
        assert_within(_ops(other)['dense'], factor * dense, abs(factor) * bound, name)
    if dist_of(cls) == 'normal':  # with_data takes any theta; only the constructor checks
        flipped = m.with_data([1.0, -0.5])
        want, _, _, want_bound, _ = expected(cls, shape, 0.4, 21, (1.0, -0.5), np.dtype(np.float32))
        assert_within(_ops(flipped)['dense'], want, want_bound, 'with_data([1, -0.5])')


@class_param
def test_sum_entry_counts_and_nnz(cls):
    shape, theta = OPS_SHAPE[cls], THETA[dist_of(cls)]
    dense, mask, _, bound, _ = expected(cls, shape, 0.35, 5, theta, np.dtype(np.float32))
    out = _ops(build(cls, shape, 0.35, theta, 5))
    assert_within(out['sum0'], dense.sum(0), bound.sum(0), 'sum(0)')
    assert_within(out['sum1'], dense.sum(1), bound.sum(1), 'sum(1)')
    assert_within(out['sum'], dense.sum(), bound.sum(), 'sum()')
    counts = np.asarray(out['counts'])
    assert counts.dtype == np.int32
    assert np.array_equal(counts, mask.sum(1 if cls.orientation == 'R' else 0))
    assert mask.sum() > 0


@pytest.mark.parametrize('cls', [be.JITCScalarR, be.JITCUniformC], ids=lambda c: c.__name__)
def test_nnz_property(cls):
    shape, theta = OPS_SHAPE[cls], THETA[dist_of(cls)]
    m = build(cls, shape, 0.35, theta, 5)
    mask = expected(cls, shape, 0.35, 5, theta, np.dtype(np.float32))[1]
    assert isinstance(m.nnz, int) and m.nnz == mask.sum()


@pytest.mark.parametrize('cls', [be.JITCNormalR, be.JITCScalarC], ids=lambda c: c.__name__)
def test_eager_conversions_give_the_reference_entries(cls):
    """Eager tocsr/tocoo/tocsc: exactly the reference entries, in order; sizes from nnz."""
    shape, theta = OPS_SHAPE[cls], THETA[dist_of(cls)]
    m = build(cls, shape, 0.35, theta, 8)
    dense, mask, _, bound, _ = expected(cls, shape, 0.35, 8, theta, np.dtype(np.float32))
    rows, cols = np.nonzero(mask)  # row-major
    csr = m.tocsr()
    assert isinstance(csr, be.CSR) and csr.nnz == mask.sum()
    assert np.array_equal(np.asarray(csr.indices), cols)
    assert np.array_equal(np.asarray(csr.indptr), np.concatenate([[0], np.cumsum(mask.sum(1))]))
    assert_within(csr.data, dense[rows, cols], bound[rows, cols], 'csr.data')
    coo = m.tocoo()
    assert isinstance(coo, be.COO) and coo.nnz == mask.sum()
    assert_within(coo.todense(), dense, bound, 'coo')
    assert np.array_equal(np.asarray(coo.todense()) != 0, mask)
    csc = m.tocsc()
    assert isinstance(csc, be.CSC)
    assert_within(csc.todense(), dense, bound, 'csc')
    ccols, crows = np.nonzero(mask.T)  # column-major
    assert np.array_equal(np.asarray(csc.indices), crows)


@pytest.mark.parametrize('cls', [be.JITCUniformR, be.JITCNormalC], ids=lambda c: c.__name__)
def test_conversions_inside_jit_with_nnz(cls):
    """tocsr/tocoo(nnz) in jit: padding is explicit zeros at (0, 0) (CSR: in the last row);
    an nnz below the count makes every weight NaN."""
    shape, theta = OPS_SHAPE[cls], THETA[dist_of(cls)]
    dense, mask, _, bound, _ = expected(cls, shape, 0.35, 9, theta, np.dtype(np.float32))
    count = int(mask.sum())
    cap = count + 7

    @jax.jit
    def convert(prob, seed):
        m = build(cls, shape, prob, theta, seed)
        coo, csr, small = m.tocoo(nnz=cap), m.tocsr(nnz=cap), m.tocoo(nnz=count - 1)
        return (coo.row, coo.col, coo.data, coo.todense(), csr.indptr, csr.data,
                csr.todense(), small.data)

    row, col, data, coo_dense, indptr, csr_data, csr_dense, small = convert(0.35, 9)
    assert row.shape == (cap,) and csr_data.shape == (cap,)
    real = np.asarray(data) != 0
    order = np.lexsort((np.asarray(col)[real], np.asarray(row)[real]))
    rows, cols = np.nonzero(mask)
    assert np.array_equal(np.asarray(row)[real][order], rows)
    assert np.array_equal(np.asarray(col)[real][order], cols)
    if cls.orientation == 'R':  # padding after the entries (CSR: in the last row)
        assert np.all(np.asarray(data[count:]) == 0)
        assert np.all(np.asarray(row[count:]) == 0) and np.all(np.asarray(col[count:]) == 0)
        assert np.all(np.asarray(csr_data[count:]) == 0) and int(indptr[-1]) == cap
    # padding entries are explicit zeros at (0, 0); no weight of these matrices is zero
    pad = ~real
    assert pad.sum() == cap - count
    assert np.all(np.asarray(row)[pad] == 0) and np.all(np.asarray(col)[pad] == 0)
    assert np.count_nonzero(np.asarray(csr_data) == 0) == cap - count
    assert int(indptr[-1]) == cap
    for name, value in (('coo', coo_dense), ('csr', csr_dense)):
        assert_within(value, dense, bound, name)
    assert small.shape == (count - 1,) and np.all(np.isnan(np.asarray(small)))


def test_conversion_errors():
    m = be.JITCScalarR(6, 9, 0.35, 0.75, 5)
    count = m.nnz
    with pytest.raises(ValueError, match=rf"nnz={count - 1} is smaller than the matrix's {count}"):
        m.tocsr(nnz=count - 1)
    with pytest.raises(ValueError, match="nnz must be a non-negative integer; received -1"):
        m.tocoo(nnz=-1)
    with pytest.raises(TypeError, match="nnz must be a non-negative integer; received 2.5"):
        m.tocoo(nnz=2.5)
    with pytest.raises(ValueError, match="inside jit give nnz="):
        jax.jit(lambda s: be.JITCScalarR(6, 9, 0.35, 0.75, s).tocsr().data)(5)


def _grads(m, ct_out, ct_left, x, y, e, s):
    """Gradients of <ct, W(theta) @ x>, <ct, y @ W(theta)>, <ct, W(theta) @ events>
    with respect to theta, x, y, and the float spikes s wrapped in BinaryArray."""
    def right(theta, x):
        return jnp.sum(ct_out * (m.with_data(theta) @ x))

    def left(theta, y):
        return jnp.sum(ct_left * (y @ m.with_data(theta)))

    def event(theta):
        return jnp.sum(ct_out * (m.with_data(theta) @ be.BinaryArray(e)))

    def spikes(s):
        return jnp.sum(ct_left * (be.BinaryArray(s) @ m))

    theta = m.data
    return (*jax.grad(right, (0, 1))(theta, x), *jax.grad(left, (0, 1))(theta, y),
            jax.grad(event)(theta), jax.grad(spikes)(s))


_grads_jit = jax.jit(_grads)


@pytest.mark.parametrize('cls, backend', [(c, 'numba') for c in CLASSES]
                         + [(be.JITCNormalR, 'jax'), (be.JITCUniformC, 'jax')],
                         ids=lambda v: getattr(v, '__name__', v))
def test_gradients_against_dense_numpy(cls, backend):
    """d/dtheta_k is the product with the basis matrix B_k; d/dx is W^T ct; spike
    gradients through BinaryArray are those of the float product."""
    shape, theta = OPS_SHAPE[cls], THETA[dist_of(cls)]
    k, n = shape
    rng = np.random.default_rng(31)
    ct_out, ct_left = rng.normal(size=k), rng.normal(size=n)
    x, y = rng.normal(size=n), rng.normal(size=k)
    e, s = rng.random(n) < 0.5, np.where(rng.random(k) < 0.5, rng.uniform(0.5, 2, k), 0)
    dense, mask, bases, bound, basis_bounds = expected(cls, shape, 0.45, 13, theta,
                                                       np.dtype(np.float32))
    m = build(cls, shape, 0.45, theta, 13, backend=backend)
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    g_theta, g_x, g_theta_left, g_y, g_theta_event, g_s = _grads_jit(
        m, f32(ct_out), f32(ct_left), f32(x), f32(y), e, f32(s))
    ef = e.astype(float)
    for name, got, left_vec, right_vec in [
            ('d/dtheta <ct, W @ x>', g_theta, ct_out, x),
            ('d/dtheta <ct, y @ W>', g_theta_left, y, ct_left),
            ('d/dtheta <ct, W @ events>', g_theta_event, ct_out, ef)]:
        want = [left_vec @ b @ right_vec for b in bases]
        tol = [np.abs(left_vec) @ bb @ np.abs(right_vec) for bb in basis_bounds]
        assert_within(got, want, np.array(tol), name)
    assert_within(g_x, dense.T @ ct_out, bound.T @ np.abs(ct_out), 'd/dx')
    assert_within(g_y, dense @ ct_left, bound @ np.abs(ct_left), 'd/dy')
    assert_within(g_s, dense @ ct_left, bound @ np.abs(ct_left), 'd/dspikes')
    assert np.abs(np.asarray(g_theta)).min() > 0


VMAP_SEEDS = np.array([0, 1, 2, 12345, 2 ** 31, MASK32], np.uint32)
VMAP_PROBS = np.array([0.3, 0.0, 1.0, 0.05, 0.7, 0.5], np.float32)


@pytest.mark.parametrize('cls', [be.JITCScalarR, be.JITCNormalC, be.JITCUniformR],
                         ids=lambda c: c.__name__)
def test_vmap_over_seeds_and_probs(cls):
    """Matrices built inside vmap from a batch of (prob, seed) are each seed's own matrix,
    in todense, entry_counts and products on both backends."""
    shape, theta = OPS_SHAPE[cls], THETA[dist_of(cls)]
    k, n = shape
    x = np.linspace(-1, 1, n, dtype=np.float32)
    y = np.linspace(1, 2, k, dtype=np.float32)

    def one(prob, seed):
        m = build(cls, shape, prob, theta, seed)
        return (m.todense(), m.entry_counts(), be.matmul(m, x, backend='numba'),
                be.matmul(y, m, backend='jax'), be.matmul(be.BinaryArray(y > 1.5), m))

    outs = jax.jit(jax.vmap(one))(VMAP_PROBS, VMAP_SEEDS)
    for i, (prob, seed) in enumerate(zip(VMAP_PROBS.tolist(), VMAP_SEEDS.tolist())):
        dense, mask, _, bound, _ = expected(cls, shape, prob, seed, theta, np.dtype(np.float32))
        todense, counts, right, left, events = (np.asarray(o[i]) for o in outs)
        assert np.array_equal(todense != 0, mask), (prob, seed)
        assert_within(todense, dense, bound, f'todense seed={seed}')
        assert np.array_equal(counts, mask.sum(1 if cls.orientation == 'R' else 0))
        assert_within(right, dense @ x, bound @ np.abs(x), f'W @ x seed={seed}')
        assert_within(left, y @ dense, np.abs(y) @ bound, f'y @ W seed={seed}')
        ev = (y > 1.5).astype(float)
        assert_within(events, ev @ dense, ev @ bound, f'events @ W seed={seed}')
    # different seeds of the batch are different matrices
    assert not np.array_equal(np.asarray(outs[0][0]), np.asarray(outs[0][5]))


def test_vmap_over_weights_and_construction_inside_jit():
    cls = be.JITCUniformR
    shape = OPS_SHAPE[cls]
    thetas_ = np.array([[0.5, 1.5], [-1.0, 1.0], [2.0, 2.0]], np.float32)

    @jax.jit
    def batched(thetas, prob, seed):
        return jax.vmap(lambda t: cls(*shape, prob, t[0], t[1], seed).todense())(thetas)

    out = np.asarray(batched(thetas_, 0.4, 17))
    for i, theta in enumerate(thetas_.tolist()):
        dense, _, _, bound, _ = expected(cls, shape, 0.4, 17, tuple(theta), np.dtype(np.float32))
        assert_within(out[i], dense, bound + 1e-6, f'theta={theta}')

    # keywords, aliases and the tuple form, all built inside jit from traced leaves
    @jax.jit
    def forms(prob, seed, low, high):
        a = be.JITCUniformR(num_pre=shape[0], num_post=shape[1], prob=prob, low=low, high=high,
                            seed=seed)
        b = be.JITCUniformR((low, high, prob, seed), shape=shape)
        c = be.JITCUniformC(shape[1], shape[0], prob, w_low=low, w_high=high, seed=seed).T
        return a.todense(), b.todense(), c.todense()

    a, b, c = forms(0.4, 17, 0.5, 1.5)
    dense, _, _, bound, _ = expected(cls, shape, 0.4, 17, (0.5, 1.5), np.dtype(np.float32))
    assert_within(a, dense, bound, 'built inside jit')
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert np.array_equal(np.asarray(a), np.asarray(c))


def test_backend_selection_by_config_and_argument():
    """with config.backend(...) and matmul(backend=...) pick the backend; results agree."""
    m = be.JITCNormalR(6, 9, 0.4, 1.25, 0.5, 21)
    x = jnp.linspace(-1, 1, 9)
    dense, _, _, bound, _ = expected(be.JITCNormalR, (6, 9), 0.4, 21, (1.25, 0.5),
                                     np.dtype(np.float32))
    results = {}
    for name in ('numba', 'jax'):
        with be.config.backend(name):
            results[name] = np.asarray(m @ x)
        results[name + ' arg'] = np.asarray(be.matmul(m, x, backend=name))
    for key, value in results.items():
        assert_within(value, dense @ np.asarray(x), bound @ np.abs(np.asarray(x)), key)
    with pytest.raises(ValueError, match="backend 'nope' is not available"):
        be.matmul(m, x, backend='nope')


# ---------------------------------------------------------------------------
# Units, properties, pytree leaves, repr
# ---------------------------------------------------------------------------

def test_units():
    m = be.JITCNormalR(6, 9, 0.4, 1.25 * u.mV, 0.5 * u.mV, 21)
    assert m.unit == u.mV
    np.testing.assert_allclose(np.asarray(m.data.to_decimal(u.mV)), [1.25, 0.5], rtol=1e-6)
    dense, _, _, bound, _ = expected(be.JITCNormalR, (6, 9), 0.4, 21, (1.25, 0.5),
                                     np.dtype(np.float32))
    x = np.linspace(-1, 1, 9).astype(np.float32)
    out = m @ jnp.asarray(x)
    assert isinstance(out, u.Quantity) and out.unit == u.mV
    assert_within(out.to_decimal(u.mV), dense @ x, bound @ np.abs(x), 'W @ x [mV]')
    out = be.BinaryArray(jnp.ones(6, bool)) @ m
    assert out.unit == u.mV
    assert_within(out.to_decimal(u.mV), dense.sum(0), bound.sum(0), 'events @ W [mV]')
    out = m @ (jnp.asarray(x) * u.second)
    assert out.unit == u.mV * u.second
    assert m.todense().unit == u.mV and m.tocsr().data.unit == u.mV
    assert m.sum().unit == u.mV
    assert m.w_sigma.unit == u.mV and m.w_mu.unit == u.mV
    # w_sigma in a compatible unit is converted to w_mu's
    volts = be.JITCNormalR(6, 9, 0.4, 1.25 * u.mV, 0.0005 * u.volt, 21)
    np.testing.assert_allclose(np.asarray(volts.data.to_decimal(u.mV)), [1.25, 0.5], rtol=1e-6)
    # with_data keeps units; scalar products with units multiply them
    assert (m * (2 * u.second)).unit == u.mV * u.second
    assert m.with_data(jnp.array([1.0, 0.1]) * u.volt).unit == u.volt
    with pytest.raises(ValueError, match=r"w_sigma is in s, which does not convert to mV"):
        be.JITCNormalR(6, 9, 0.4, 1.25 * u.mV, 0.5 * u.second, 21)
    with pytest.raises(ValueError, match=r"w_high is in 1, which does not convert to mV"):
        be.JITCUniformR(6, 9, 0.4, 1.0 * u.mV, 2.0, 21)
    with pytest.raises(TypeError, match=r"scipy.sparse has no units"):
        m.to_scipy()


def test_properties_aliases_and_pytree_leaves():
    s = be.JITCScalarR(3, 4, 0.5, 0.25, 7)
    n = be.JITCNormalC(3, 4, 0.5, loc=1.0, scale=0.5, seed=7)
    w = be.JITCUniformR(3, 4, 0.5, low=-1.0, high=2.0, seed=7)
    assert float(s.weight) == 0.25
    assert (float(n.w_mu), float(n.w_sigma), float(n.loc), float(n.scale)) == (1.0, 0.5, 1.0, 0.5)
    assert (float(w.w_low), float(w.w_high), float(w.low), float(w.high)) == (-1.0, 2.0, -1.0, 2.0)
    with pytest.raises(AttributeError):
        s.w_mu  # noqa: B018
    for m, k in ((s, 1), (n, 2), (w, 2)):
        data, prob, seed = jax.tree_util.tree_leaves(m)
        assert data.shape == (k,) and data.dtype == np.float32
        assert prob.dtype == np.float32 and float(prob) == 0.5
        assert seed.dtype == np.uint32 and int(seed) == 7
        assert m.is_homogeneous == (k == 1)
        assert isinstance(m, be.JITCMatrix)
    with precision(np.float64):
        d = be.JITCNormalR(3, 4, 0.5, 1.0, 0.5, 7, dtype=np.float64)
        assert d.data.dtype == np.float64 and d.prob.dtype == np.float32
    assert be.JITCNormalR(3, 4, 0.5, 1.0, 0.5).seed.dtype == np.uint32  # seed=None: drawn


def test_repr():
    number = r"{}(\.0+)?"
    cases = [(be.JITCScalarR(3, 4, 0.5, 0.25, 7),
              r"JITCScalarR\(shape=\(3, 4\), prob=0\.5, weight=0\.25, seed=7\)"),
             (be.JITCNormalC(3, 4, 0.125, 1.0, 0.5, 4294967295),
              rf"JITCNormalC\(shape=\(3, 4\), prob=0\.125, w_mu={number.format(1)}, w_sigma=0\.5, "
              rf"seed=4294967295\)"),
             (be.JITCUniformR(3, 4, 0.3, 1 * u.mV, 2 * u.mV, 1),
              rf"JITCUniformR\(shape=\(3, 4\), prob=0\.3, w_low={number.format(1)}, "
              rf"w_high={number.format(2)}, seed=1, unit=mV\)")]
    for m, pattern in cases:
        assert re.fullmatch(pattern, repr(m)), repr(m)


def test_repr_inside_jit():
    seen = []

    @jax.jit
    def f(low, high):
        m = be.JITCUniformR(6, 9, 0.4, low, high, 17)
        seen.append(repr(m))
        return m.todense()

    f(0.5, 1.5)
    assert seen == ["JITCUniformR(shape=(6, 9), traced)"]


# ---------------------------------------------------------------------------
# 6. Bad input
# ---------------------------------------------------------------------------

S, N = be.JITCScalarR, be.JITCNormalR


@functools.cache
def _matrix():
    return be.JITCNormalR(3, 4, 0.5, 0.0, 1.0, 0)


BAD = [
    # prob
    ('prob > 1', lambda: S(3, 4, 1.5, 1.0, 0), ValueError, ['prob', '[0, 1]', '1.5']),
    ('prob < 0', lambda: S(3, 4, -0.25, 1.0, 0), ValueError, ['prob', '[0, 1]', '-0.25']),
    ('prob nan', lambda: S(3, 4, float('nan'), 1.0, 0), ValueError, ['prob', '[0, 1]', 'nan']),
    ('prob inf', lambda: S(3, 4, float('inf'), 1.0, 0), ValueError, ['prob', '[0, 1]', 'inf']),
    ('prob units', lambda: S(3, 4, 0.5 * u.mV, 1.0, 0), TypeError, ['prob', 'unitless', 'mV']),
    ('prob bool', lambda: S(3, 4, True, 1.0, 0), TypeError, ['prob', 'number', 'bool']),
    ('prob array', lambda: S(3, 4, [0.1, 0.2], 1.0, 0), ValueError, ['prob', 'scalar', '(2,)']),
    ('prob str', lambda: S(3, 4, '0.5', 1.0, 0), TypeError, ['prob', 'real number', "'0.5'"]),
    ('prob complex', lambda: S(3, 4, 0.5 + 0j, 1.0, 0), TypeError, ['prob', 'real number',
                                                                  '(0.5+0j)']),
    # seed
    ('seed < 0', lambda: S(3, 4, 0.5, 1.0, -1), ValueError, ['seed', '[0, 2**32)', '-1']),
    ('seed 2**32', lambda: S(3, 4, 0.5, 1.0, 2 ** 32), ValueError,
     ['seed', '[0, 2**32)', '4294967296']),
    ('seed np.int64 < 0', lambda: S(3, 4, 0.5, 1.0, np.int64(-3)), ValueError,
     ['seed', '[0, 2**32)', '-3']),
    ('seed array < 0', lambda: S(3, 4, 0.5, 1.0, jnp.array(-5)), ValueError,
     ['seed', '[0, 2**32)', '-5']),
    ('seed float', lambda: S(3, 4, 0.5, 1.0, 1.5), TypeError, ['seed', 'integer', 'float']),
    ('seed integral float', lambda: S(3, 4, 0.5, 1.0, 2.0), TypeError,
     ['seed', 'integer', 'float']),
    ('seed bool', lambda: S(3, 4, 0.5, 1.0, True), TypeError, ['seed', 'integer', 'bool']),
    ('seed array', lambda: S(3, 4, 0.5, 1.0, [1, 2]), ValueError, ['seed', 'scalar', '(2,)']),
    # weights
    ('w_sigma < 0', lambda: N(3, 4, 0.5, 1.0, -0.5, 0), ValueError, ['w_sigma', '>= 0', '-0.5']),
    ('weight array', lambda: S(3, 4, 0.5, [1.0, 2.0], 0), ValueError, ['weight', 'scalar', '(2,)']),
    ('weight str', lambda: S(3, 4, 0.5, 'x', 0), TypeError, ['weight', 'numeric', '<U1']),
    ('dtype int', lambda: S(3, 4, 0.5, 1.0, 0, dtype=np.int32), TypeError,
     ['dtype', 'floating', 'int32']),
    # arguments
    ('missing w_sigma', lambda: N(3, 4, 0.5, 1.0), TypeError, ['missing', 'w_sigma']),
    ('missing prob', lambda: S(3, 4, weight=1.0, seed=0), TypeError, ['missing', 'prob']),
    ('missing dims', lambda: S(prob=0.5, weight=1.0, seed=0), TypeError,
     ['num_pre', 'num_post', 'None']),
    ('unknown kwarg', lambda: N(3, 4, 0.5, 1.0, 0.5, foo=1), TypeError,
     ["'foo'", 'w_mu, w_sigma', 'loc']),
    ('duplicate', lambda: S(3, 4, 0.5, 1.0, 0, prob=0.2), TypeError, ["'prob' twice"]),
    ('duplicate alias', lambda: N(3, 4, 0.5, 1.0, 0.5, scale=0.2), TypeError, ["'w_sigma' twice"]),
    ('too many positional', lambda: S(3, 4, 0.5, 1.0, 0, 7), TypeError,
     ['at most 5', 'num_pre, num_post, prob, weight, seed', '6']),
    ('tuple length', lambda: N((1.0, 0.5), shape=(3, 4)), ValueError,
     ['(w_mu, w_sigma, prob, seed)', '2 items']),
    ('tuple without shape', lambda: N((1.0, 0.5, 0.5, 0)), ValueError, ['shape=']),
    ('tuple and more', lambda: S((1.0, 0.5, 0), 4, shape=(3, 4)), TypeError,
     ['takes no other arguments', '1 more positional']),
    ('shape disagrees', lambda: S(3, 5, 0.5, 1.0, 0, shape=(3, 4)), ValueError,
     ['shape=(3, 4)', 'num_post=5']),
    ('shape disagrees, keyword', lambda: S(num_pre=2, shape=(3, 4), prob=0.5, weight=1.0, seed=0),
     ValueError, ['shape=(3, 4)', 'num_pre=2']),
    ('float dims', lambda: S(3.5, 4, 0.5, 1.0, 0), TypeError, ['num_pre', 'integers', '3.5']),
    ('negative dims', lambda: S(-3, 4, 0.5, 1.0, 0), ValueError, ['num_pre', 'non-negative', '-3']),
    ('str dims', lambda: S('3', 4, 0.5, 1.0, 0), TypeError, ['num_pre', 'integers', "'3'"]),
    ('huge dims', lambda: S(2 ** 30 + 1, 4, 0.5, 1.0, 0), ValueError, ['2**30', '1073741825']),
    # methods
    ('with_data shape', lambda: _matrix().with_data(jnp.ones(3)), ValueError,
     ['data', '(2,)', 'w_mu, w_sigma', '(3,)']),
    ('with_data length', lambda: _matrix().with_data([1.0]), ValueError,
     ['data', '2 parameters', 'received 1']),
    ('nnz negative', lambda: _matrix().tocsr(nnz=-1), ValueError, ['nnz', 'non-negative', '-1']),
    ('nnz float', lambda: _matrix().tocoo(nnz=1.5), TypeError, ['nnz', 'integer', '1.5']),
    ('transpose axes', lambda: _matrix().transpose((0, 1)), ValueError, ['axes=(1, 0)', '(0, 1)']),
    ('sum axis', lambda: _matrix().sum(2), ValueError, ['axis', 'None, 0 or 1', '2']),
    ('backend', lambda: S(3, 4, 0.5, 1.0, 0, backend='nope'), ValueError, ["'nope'", 'numba']),
]


@pytest.mark.parametrize('case', BAD, ids=[c[0] for c in BAD])
def test_bad_input_is_rejected_with_a_clear_message(case):
    _, make, kind, pieces = case
    with pytest.raises(kind) as info:
        make()
    message = str(info.value)
    for piece in pieces:
        assert piece in message, (piece, message)


def test_traced_prob_and_seed_are_accepted_unchecked():
    """Inside jit the values are unknown: construction must not fail (checks are eager)."""
    f = jax.jit(lambda p, s: be.JITCScalarR(3, 4, p, 1.0, s).entry_counts())
    assert np.asarray(f(1.0, 3)).tolist() == [4, 4, 4]
    assert np.asarray(f(0.0, 3)).tolist() == [0, 0, 0]


@pytest.mark.parametrize('seed', [np.array(2 ** 33), np.array(2 ** 32 + 5, np.int64)],
                         ids=['2**33', '2**32+5'])
def test_seed_array_out_of_range_is_rejected(seed):
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*32\)"):
        be.JITCScalarR(3, 4, 0.5, 1.0, seed)


def test_complex_prob_message_names_the_argument():
    with pytest.raises((TypeError, ValueError), match='prob'):
        be.JITCScalarR(3, 4, 0.5 + 0j, 1.0, 0)


# ---------------------------------------------------------------------------
# float32 variates: the top draw stays below 1 in float32, so the backends agree
# ---------------------------------------------------------------------------

# seed whose row 0, entry 0 has the normal draw r1 = 0xfffffe70 (r1 >> 9 = 2**23 - 1: the
# largest variate; found with the reference)
ROUNDING_SEED = 6042981


def test_rounding_seed_is_what_the_reference_says():
    wkey = ref.row_key(ref.seed_key(ROUNDING_SEED), 0) ^ ref.WEIGHT_SALT
    assert ref.draw(wkey, 0) >> 9 == 0x7FFFFF
    z32 = ref.normal01(ref.draw(wkey, 0), ref.draw(wkey, 1), np.float32)
    z64 = ref.normal01(ref.draw(wkey, 0), ref.draw(wkey, 1))
    assert z64 != 0.0 and abs(z32 - z64) <= 1e-3 * abs(z64)


def test_uniform01_is_below_one_in_float32():
    assert float(uniform01(jnp.uint32(MASK32), jnp.float32)) < 1.0


def test_float32_normal_weights_agree_across_backends_on_rounding_draws():
    m = be.JITCNormalR(1, 1, 1.0, 0.0, 1.0, ROUNDING_SEED)
    numba = float(be.matmul(m, jnp.ones(1), backend='numba')[0])
    jax_ = float(be.matmul(m, jnp.ones(1), backend='jax')[0])
    assert abs(numba - jax_) <= 1e-6, (numba, jax_)
