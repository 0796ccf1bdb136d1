"""FixedPostNumConn / FixedPreNumConn: a fixed number of connections per neuron.

The contract tested here (the products also run in the conformance suite,
test_products.py, through ``FixedBuilt``):

* Generator ``FixedPostNumConn(num_pre, num_post, conn_num, weight, seed, ...)``:
  ``indices`` is ``(num_pre, conn_num)`` int32, each row sorted, in range, with
  ``conn_num`` distinct targets (``replace=False``) or independent ones
  (``replace=True``); ``allow_self_connections=False`` leaves out ``(i, i)``
  and needs a square shape. The targets are uniform: checked by exact
  chi-square tests on the distribution of whole rows (small ``num_post``),
  column hits, pair frequencies, self-free offsets and the overlap of
  neighbouring rows and seeds, with thresholds a correct generator fails with
  probability below 1e-6 and the usual biased shortcuts (the first
  ``conn_num`` columns, sorted uniforms plus offsets) fail by far.
* The same arguments give the same arrays: twice, in a fresh process, under
  ``jit`` with a traced seed, on both backends; different seeds differ.
* Weights: a scalar (homogeneous, ``data`` of shape (1,)), a
  ``(num_pre, conn_num)`` array, a callable ``weight(key, shape)``, brainunit
  quantities (products carry the units).
* ``FixedPreNumConn`` is the transposed view: same arrays as
  ``FixedPostNumConn(num_post, num_pre, ...)``, ``.T`` converts both ways.
* Explicit ``(data, indices)`` form; conversions and construction from other
  matrices agree with a numpy dense reference built from ``indices`` and
  ``data``; rows with different numbers of entries are refused.
* Products on both backends (event and float, vector and matrix, both sides)
  and under ``jit``, ``grad`` (data and spike values), ``vmap``, ``lax.scan``,
  on small matrices and a 2000 x 3000 one with 50 connections per row.
* Bad input raises ``ValueError``/``TypeError`` naming the argument.

Cost: few shapes (most tests share FixedPost(13, 17, 5) and its transposed twin
FixedPre(17, 13, 5), so the generator and the products compile once for them);
statistics on arrays of at most 60,000 entries.
"""

import functools
import itertools
import json
import math
import os
import subprocess
import sys

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.stats

import brainevent as be
from strategies import dense_of, precision

Post, Pre = be.FixedPostNumConn, be.FixedPreNumConn
class_param = pytest.mark.parametrize('cls', [Post, Pre], ids=lambda c: c.__name__)
# One size for the tests that need no particular one: FixedPost(13, 17, 5) and its transposed
# twin FixedPre(17, 13, 5) share the generator's compile (and so do the products of a shape).
ARGS = {Post: (13, 17, 5), Pre: (17, 13, 5)}
BACKENDS = ('numba', 'jax')
P_MIN = 1e-6  # a correct generator fails a statistical test below with probability P_MIN


def normal(key, shape):
    return jax.random.normal(key, shape)


# ---------------------------------------------------------------------------
# The numpy reference: the matrix described by ``indices`` and ``data``
# ---------------------------------------------------------------------------

def entries(m):
    """``(row, col, weight)`` in numpy of every element of ``m.data``, in ``indices`` order."""
    idx = np.asarray(m.indices)
    k, c = idx.shape
    data = np.asarray(u.get_mantissa(m.data), np.float64)
    sources, targets = np.repeat(np.arange(k), c), idx.ravel().astype(np.int64)
    row, col = (sources, targets) if isinstance(m, Post) else (targets, sources)
    weights = np.broadcast_to(data.reshape(-1), row.shape) if m.is_homogeneous \
        else data.reshape(row.shape)
    return row, col, weights


def reference_dense(m):
    row, col, weights = entries(m)
    return dense_of(m.shape, row, col, weights)


def assert_close(actual, expected, magnitude=None, tol=1e-5, what='value'):
    """``|actual - expected| <= tol * (1 + magnitude)`` element-wise (float32 sums)."""
    actual = np.asarray(u.get_mantissa(actual), np.float64)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    magnitude = np.abs(expected) if magnitude is None else np.asarray(magnitude, np.float64)
    err = np.abs(actual - expected)
    bound = tol * (1 + magnitude)
    assert np.all(err <= bound), f"{what}: max error {err.max(initial=0):.3g}"


def assert_same_arrays(a, b, what=''):
    for field in ('indices', 'data'):
        x, y = np.asarray(u.get_mantissa(getattr(a, field))), \
            np.asarray(u.get_mantissa(getattr(b, field)))
        assert x.shape == y.shape and x.dtype == y.dtype, (what, field, x.shape, y.shape)
        assert np.array_equal(x, y), f"{what}: {field} differ"


def check_rows(idx, num_post, conn_num, replace=False):
    """Each row of ``idx``: sorted, in range, distinct unless ``replace``."""
    idx = np.asarray(idx)
    assert idx.shape[1] == conn_num
    assert idx.size == 0 or (idx.min() >= 0 and idx.max() < num_post)
    steps = np.diff(idx.astype(np.int64), axis=1)
    assert np.all(steps >= 0 if replace else steps > 0), "rows must be sorted" + (
        "" if replace else " with distinct targets")


# ---------------------------------------------------------------------------
# 1. Generator: structure
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('num_pre,num_post,conn_num', [
    (13, 17, 5), (12, 5, 5), (6, 9, 0), (0, 4, 2), (1, 1, 1), (25, 1000, 3)])
def test_generator_rows_hold_distinct_sorted_targets(num_pre, num_post, conn_num):
    m = Post(num_pre, num_post, conn_num, seed=3)
    assert m.shape == (num_pre, num_post) and m.conn_num == conn_num
    assert m.format == 'fixed_post' and m.nnz == num_pre * conn_num
    idx = np.asarray(m.indices)
    assert idx.shape == (num_pre, conn_num) and idx.dtype == np.int32
    check_rows(idx, num_post, conn_num)
    if conn_num == num_post:  # every target
        assert np.array_equal(idx, np.broadcast_to(np.arange(num_post), idx.shape))
    # default weight: homogeneous 1.0
    assert m.is_homogeneous and m.data.shape == (1,) and float(m.data[0]) == 1.0
    assert m.dtype == jnp.float32
    dense = np.asarray(m.todense())
    assert np.array_equal(dense, reference_dense(m))
    assert np.array_equal(dense.sum(1), np.full(num_pre, conn_num))  # conn_num ones per row
    # keyword arguments give the same matrix
    kw = Post(num_pre=num_pre, num_post=num_post, conn_num=conn_num, weight=1.0, seed=3)
    assert_same_arrays(m, kw)


def test_generation_does_not_scale_with_num_post():
    """O(num_pre * conn_num): 2**30 possible targets (4 GiB as a float32 row) are no
    obstacle for 4 draws per row."""
    n = 2 ** 30
    m = Post(3, n, 4, weight=normal, seed=1)
    assert m.shape == (3, n) and m.data.shape == (3, 4)
    check_rows(np.asarray(m.indices), n, 4)
    t = Pre(n, 3, 4, seed=1)
    assert t.shape == (n, 3)
    check_rows(np.asarray(t.indices), n, 4)


def test_replace_draws_independent_targets():
    """replace=True: sorted rows in range, repeats happen, conn_num may exceed num_post,
    duplicates add up in the dense matrix, and each draw is uniform (multinomial counts)."""
    m = Post(200, 10, 15, weight=0.5, seed=1, replace=True)
    idx = np.asarray(m.indices)
    assert idx.shape == (200, 15) and idx.dtype == np.int32
    check_rows(idx, 10, 15, replace=True)
    assert np.all(np.diff(idx, axis=1) == 0, axis=1).sum() == 0  # no row of one target
    assert np.any(np.diff(idx, axis=1) == 0)  # 15 of 10 columns: every row repeats
    dense = np.asarray(m.todense())
    np.testing.assert_allclose(dense, reference_dense(m))
    np.testing.assert_allclose(dense.sum(1), 7.5)
    # the 3000 draws are independent and uniform over 10 columns: chi2 with 9 dof
    counts = np.bincount(idx.ravel(), minlength=10)
    assert scipy.stats.chisquare(counts).pvalue > P_MIN, counts
    # conn_num <= num_post with replacement repeats too
    m = Post(100, 10, 10, seed=2, replace=True)
    assert np.any(np.diff(np.asarray(m.indices), axis=1) == 0)


def test_replace_rows_are_uniform_multisets():
    """With replacement, num_post=3, conn_num=2: sorted pairs (a, a) have probability 1/9,
    (a, b) with a < b 2/9 (two orders)."""
    m = Post(9000, 3, 2, seed=4, replace=True)
    idx = np.asarray(m.indices)
    check_rows(idx, 3, 2, replace=True)
    codes = idx[:, 0] * 3 + idx[:, 1]
    pairs = [(a, b) for a in range(3) for b in range(a, 3)]
    counts = np.array([np.sum(codes == a * 3 + b) for a, b in pairs])
    probs = np.array([1 / 9 if a == b else 2 / 9 for a, b in pairs])
    assert counts.sum() == 9000
    assert scipy.stats.chisquare(counts, probs * 9000).pvalue > P_MIN, counts


def test_no_self_connections():
    """allow_self_connections=False: no (i, i); conn_num = num_post - 1 is every other target;
    the targets are uniform over the other columns (offsets (j - i) mod n)."""
    n, c = 300, 10
    m = Post(n, n, c, seed=5, allow_self_connections=False)
    idx = np.asarray(m.indices)
    check_rows(idx, n, c)
    assert not np.any(idx == np.arange(n)[:, None])
    assert np.all(np.diag(np.asarray(m.todense())) == 0)
    # offsets form a c-subset of {1..n-1}: counts have covariance
    # N p (1 - p) n'/(n'-1) (I - 11'/n'), n' = n - 1, p = c / n'
    for c in (c, 200):  # 200 of 299: more than half
        idx = np.asarray(Post(n, n, c, seed=5, allow_self_connections=False).indices)
        check_rows(idx, n, c)
        assert not np.any(idx == np.arange(n)[:, None])
        offsets = ((idx - np.arange(n)[:, None]) % n).ravel()
        assert offsets.min() >= 1
        counts = np.bincount(offsets - 1, minlength=n - 1)
        k, p = n - 1, c / (n - 1)
        expected = n * p
        stat = np.sum((counts - expected) ** 2 / expected) / ((1 - p) * k / (k - 1))
        assert scipy.stats.chi2.sf(stat, k - 1) > P_MIN, (c, stat)
    # the largest degree: every target but i
    full = np.asarray(Post(5, 5, 4, seed=1, allow_self_connections=False).indices)
    for i in range(5):
        assert full[i].tolist() == [j for j in range(5) if j != i]
    # with replacement too: never (i, i)
    rep = np.asarray(Post(50, 50, 60, seed=2, allow_self_connections=False,
                          replace=True).indices)
    check_rows(rep, 50, 60, replace=True)
    assert not np.any(rep == np.arange(50)[:, None])
    # FixedPre: no (j, j) either
    pre = Pre(17, 17, 5, seed=3, allow_self_connections=False)
    assert not np.any(np.asarray(pre.indices) == np.arange(17)[:, None])
    assert np.all(np.diag(np.asarray(pre.todense())) == 0)


# ---------------------------------------------------------------------------
# 2. Generator: uniformity
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('n,c', [(5, 2), (6, 3), (5, 3)])
def test_rows_are_uniform_subsets(n, c):
    """Each row is one of the C(n, c) subsets, each with probability 1 / C(n, c): an exact
    multinomial chi-square over whole rows (rows are independent). (5, 3): more than half of
    the columns (a generator may draw the excluded ones instead)."""
    subsets = list(itertools.combinations(range(n), c))
    rows = 150 * len(subsets)
    idx = np.asarray(Post(rows, n, c, seed=7).indices)
    check_rows(idx, n, c)
    code = {s: i for i, s in enumerate(subsets)}
    counts = np.bincount([code[tuple(r)] for r in idx.tolist()], minlength=len(subsets))
    assert counts.sum() == rows
    assert scipy.stats.chisquare(counts).pvalue > P_MIN, counts


def test_column_hits_are_uniform():
    """Column hit counts of 2000 rows of 10 targets among 50: for uniform c-subsets the
    statistic scaled by (1 - p) n / (n - 1) is chi-square with n - 1 dof. Always taking
    the first conn_num columns fails by far."""
    num_pre, n, c = 2000, 50, 10
    idx = np.asarray(Post(num_pre, n, c, seed=1).indices)
    counts = np.bincount(idx.ravel(), minlength=n)
    p = c / n
    expected = num_pre * p
    stat = np.sum((counts - expected) ** 2 / expected) / ((1 - p) * n / (n - 1))
    assert scipy.stats.chi2.sf(stat, n - 1) > P_MIN, counts
    # the biased shortcut fails this test
    first = np.bincount(np.tile(np.arange(c), num_pre), minlength=n)
    bad = np.sum((first - expected) ** 2 / expected) / ((1 - p) * n / (n - 1))
    assert scipy.stats.chi2.sf(bad, n - 1) < 1e-100


def _pair_statistic(idx, n):
    """Mean of (O - E)^2 / E over the n(n-1)/2 column pairs of the rows' targets."""
    c = idx.shape[1]
    counts = np.zeros((n, n))
    for a in range(c):
        for b in range(a + 1, c):
            np.add.at(counts, (idx[:, a], idx[:, b]), 1)
    observed = counts[np.triu_indices(n, 1)]
    expected = idx.shape[0] * c * (c - 1) / (n * (n - 1))
    return np.mean((observed - expected) ** 2 / expected)


def test_pair_frequencies_are_uniform():
    """Every pair of columns appears together in a row with the same frequency.

    For uniform 5-subsets of 20 columns and 4000 rows the statistic has mean 0.95
    and standard deviation 0.13 (simulated); 1.8 is 6.6 deviations out. Sorted
    uniform draws plus offsets (distinct and sorted, but adjacent columns are
    drawn together too rarely) score 4.6 or more."""
    num_pre, n, c = 4000, 20, 5
    idx = np.asarray(Post(num_pre, n, c, seed=2).indices)
    assert _pair_statistic(idx, n) < 1.8
    rng = np.random.default_rng(0)
    biased = np.sort(rng.integers(0, n - c + 1, (num_pre, c)), axis=1) + np.arange(c)
    assert _pair_statistic(biased, n) > 3.0


def test_neighbouring_rows_and_seeds_are_independent():
    """The overlap of two independent uniform c-subsets of n is hypergeometric with mean
    c^2 / n: between consecutive rows, and between the same row under seeds s and s + 1."""
    num_pre, n, c = 2000, 100, 10
    a = np.asarray(Post(num_pre, n, c, seed=10).indices)
    b = np.asarray(Post(num_pre, n, c, seed=11).indices)
    mean = c * c / n
    sd = math.sqrt(c * (c / n) * ((n - c) / n) * ((n - c) / (n - 1)) / (num_pre - 1))

    def overlaps(x, y):
        hits = np.zeros((x.shape[0], n), bool)
        hits[np.arange(x.shape[0])[:, None], x] = True
        return hits[np.arange(y.shape[0])[:, None], y].sum(1)

    for what, got in (('consecutive rows', overlaps(a[:-1], a[1:]).mean()),
                      ('seeds 10 and 11', overlaps(a, b).mean())):
        assert abs(got - mean) < 7 * sd, (what, got, mean, sd)


# ---------------------------------------------------------------------------
# 3. Generator: reproducibility
# ---------------------------------------------------------------------------

FRESH_SNIPPET = r'''
import hashlib, json
import jax
import numpy as np
import brainevent as be


def digests():
    mats = {
        'post': be.FixedPostNumConn(64, 50, 8, weight=lambda k, s: jax.random.normal(k, s),
                                    seed=11),
        'no-self': be.FixedPostNumConn(30, 30, 6, seed=5, allow_self_connections=False),
        'replace': be.FixedPreNumConn(7, 20, 9, weight=0.5, seed=np.uint32(2 ** 32 - 1),
                                      replace=True),
    }
    out = {}
    for name, m in mats.items():
        for field in ('indices', 'data'):
            a = np.asarray(getattr(m, field))
            out[name + ' ' + field] = [str(a.dtype), list(a.shape),
                                       hashlib.sha256(a.tobytes()).hexdigest()]
    return out


if __name__ == '__main__':
    print(json.dumps(digests()))
'''


def test_same_matrix_in_a_fresh_process():
    env = dict(os.environ, JAX_PLATFORMS='cpu')
    proc = subprocess.run([sys.executable, '-c', FRESH_SNIPPET], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    namespace = {'__name__': 'fresh_snippet'}
    exec(FRESH_SNIPPET, namespace)
    ours = namespace['digests']()
    assert ours == theirs


def test_same_arguments_give_the_same_matrix_everywhere():
    """Twice eagerly, with a uint32 seed, under jit with the seed traced (int32 and uint32),
    and on both backends: identical arrays."""
    cls, args = Post, (13, 17, 5)
    base = cls(*args, weight=normal, seed=7)
    assert_same_arrays(base, cls(*args, weight=normal, seed=7), 'again')
    assert_same_arrays(base, cls(*args, weight=normal, seed=np.uint32(7)), 'uint32 seed')
    make = jax.jit(lambda s: cls(*args, weight=normal, seed=s))
    assert_same_arrays(base, make(7), 'jit, int seed')
    assert_same_arrays(base, make(np.uint32(7)), 'jit, uint32 seed')
    dense = np.asarray(base.todense())
    np.testing.assert_array_equal(dense, reference_dense(base))
    for name in BACKENDS:
        with be.config.backend(name):
            m = cls(*args, weight=normal, seed=7)
            assert_same_arrays(base, m, name)
            np.testing.assert_array_equal(np.asarray(m.todense()), dense)
    # options that change the draw, and FixedPre, are reproducible under jit too
    for make in (lambda s: Post(13, 17, 5, seed=s, replace=True),
                 lambda s: Post(17, 17, 5, seed=s, allow_self_connections=False),
                 lambda s: Pre(17, 13, 5, weight=normal, seed=s)):
        assert_same_arrays(make(3), jax.jit(make)(3))


def test_different_seeds_give_different_matrices():
    seeds = [0, 1, 2, 2 ** 31 - 1, np.uint32(2 ** 31 + 5), np.uint32(2 ** 32 - 1)]
    mats = [np.asarray(Post(13, 17, 5, seed=s).indices) for s in seeds]
    for (i, a), (j, b) in itertools.combinations(enumerate(mats), 2):
        differing_rows = np.mean(np.any(a != b, axis=1))
        assert differing_rows > 0.9, (seeds[i], seeds[j], differing_rows)
    # callable weights differ with the seed too
    w0, w1 = (np.asarray(Post(13, 17, 5, weight=normal, seed=s).data) for s in (0, 1))
    assert not np.allclose(w0, w1)


# ---------------------------------------------------------------------------
# 4. Weights
# ---------------------------------------------------------------------------

def test_weight_forms():
    rng = np.random.default_rng(0)
    # scalar: homogeneous
    m = Post(13, 17, 5, weight=0.25, seed=1)
    assert m.is_homogeneous and m.data.shape == (1,)
    np.testing.assert_allclose(np.asarray(m.data), [0.25])
    dense = np.asarray(m.todense())
    np.testing.assert_allclose(dense, reference_dense(m))
    np.testing.assert_allclose(dense.sum(1), 1.25)
    # per-entry array: stored as given, in the order of indices
    w = rng.normal(size=(13, 5)).astype(np.float32)
    m = Post(13, 17, 5, weight=w, seed=1)
    assert not m.is_homogeneous
    np.testing.assert_array_equal(np.asarray(m.data), w)
    np.testing.assert_array_equal(np.asarray(m.indices),
                                  np.asarray(Post(13, 17, 5, seed=1).indices))  # same structure
    np.testing.assert_allclose(np.asarray(m.todense()), reference_dense(m), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(m.todense()).sum(1), w.sum(1), rtol=1e-5, atol=1e-6)
    # callable: called with a JAX key and the shape (num_pre, conn_num)
    calls = []

    def weight(key, shape):
        calls.append((key, shape))
        return jax.random.uniform(key, shape, minval=1.0, maxval=2.0)

    m = Post(13, 17, 5, weight=weight, seed=1)
    assert calls and all(tuple(shape) == (13, 5) for _, shape in calls)
    key = calls[-1][0]
    if not isinstance(key, jax.core.Tracer):  # called eagerly: the data are its values
        np.testing.assert_array_equal(
            np.asarray(m.data), np.asarray(jax.random.uniform(key, (13, 5), minval=1.0,
                                                              maxval=2.0)))
    np.testing.assert_array_equal(np.asarray(m.data),
                                  np.asarray(Post(13, 17, 5, weight=weight, seed=1).data))
    assert np.all((np.asarray(m.data) >= 1) & (np.asarray(m.data) < 2))
    np.testing.assert_allclose(np.asarray(m.todense()), reference_dense(m), rtol=1e-6)
    # dtype
    assert Post(13, 17, 5, weight=np.float32(0.5), seed=0, dtype=jnp.float32).dtype == \
        jnp.float32
    with precision(np.float64):
        m64 = Post(13, 17, 5, weight=0.5, seed=0, dtype=jnp.float64)
        assert m64.dtype == jnp.float64 and np.asarray(m64.todense()).dtype == np.float64


def test_weight_units_and_products_carry_them():
    rng = np.random.default_rng(1)
    g = Post(13, 17, 5, weight=0.5 * u.mS, seed=1)
    assert u.get_unit(g.data) == u.mS and g.is_homogeneous
    d = reference_dense(g)
    assert u.get_unit(g.todense()) == u.mS
    spikes = rng.random(13) < 0.3
    out = be.BinaryArray(spikes) @ g
    assert u.get_unit(out) == u.mS
    assert_close(out, spikes @ d)
    x = rng.normal(size=17).astype(np.float32)
    cur = g @ (jnp.asarray(x) * u.mV)
    assert u.get_unit(cur) == u.mS * u.mV
    assert_close(cur, d @ x, np.abs(d) @ np.abs(x))
    # per-entry Quantity
    w = rng.uniform(0.5, 1.5, (13, 5)).astype(np.float32) * u.nS
    h = Post(13, 17, 5, weight=w, seed=1)
    assert u.get_unit(h.data) == u.nS and not h.is_homogeneous
    np.testing.assert_allclose(np.asarray(u.get_mantissa(h.data)), u.get_mantissa(w))
    out = be.BinaryArray(spikes) @ h
    assert u.get_unit(out) == u.nS
    assert_close(out, spikes @ reference_dense(h))
    # FixedPre, and the transposed view keeps the unit
    p = Pre(17, 13, 5, weight=2.0 * u.mV, seed=2)
    assert u.get_unit(p.T.data) == u.mV
    pre_spikes = rng.random(17) < 0.3
    out = be.BinaryArray(pre_spikes) @ p
    assert u.get_unit(out) == u.mV
    assert_close(out, pre_spikes @ reference_dense(p))
    assert u.get_unit(g.tocsr().data) == u.mS


# ---------------------------------------------------------------------------
# 5. Explicit form and the transposed view
# ---------------------------------------------------------------------------

def test_explicit_form():
    data = np.array([[0.5, -1.0], [2.0, 0.25], [1.5, -0.75]], np.float32)
    indices = np.array([[3, 0], [1, 2], [2, 2]], np.int32)  # unsorted; a duplicate in row 2
    m = Post((data, indices), shape=(3, 4))
    assert m.shape == (3, 4) and m.conn_num == 2 and m.nnz == 6 and not m.is_homogeneous
    assert m.format == 'fixed_post' and np.asarray(m.indices).dtype == np.int32
    want = np.zeros((3, 4))
    np.add.at(want, (np.repeat(np.arange(3), 2), indices.ravel()), data.ravel())
    assert want[2, 2] == 0.75  # duplicates add
    np.testing.assert_allclose(np.asarray(m.todense()), want)
    np.testing.assert_allclose(np.asarray(m.tocsr().todense()), want)
    m.check_format()
    # int64 indices are stored as int32
    assert np.asarray(Post((data, indices.astype(np.int64)), shape=(3, 4)).indices).dtype == \
        np.int32
    # scalar data: homogeneous
    h = Post((0.5, indices), shape=(3, 4))
    assert h.is_homogeneous and h.data.shape == (1,)
    np.testing.assert_allclose(np.asarray(h.todense()),
                               dense_of((3, 4), np.repeat(np.arange(3), 2), indices.ravel(),
                                        np.full(6, 0.5)))
    # FixedPre: indices (num_post, conn_num) hold the sources of each postsynaptic neuron
    src = np.array([[0, 2], [1, 0], [2, 1], [0, 1]], np.int32)
    w = np.arange(1, 9, dtype=np.float32).reshape(4, 2)
    p = Pre((w, src), shape=(3, 4))
    assert p.format == 'fixed_pre' and p.shape == (3, 4) and p.conn_num == 2 and p.nnz == 8
    want = np.zeros((3, 4))
    np.add.at(want, (src.ravel(), np.repeat(np.arange(4), 2)), w.ravel())
    np.testing.assert_allclose(np.asarray(p.todense()), want)
    np.testing.assert_allclose(reference_dense(p), want)


def test_transpose_is_the_other_class_with_the_same_arrays():
    m = Post(13, 17, 5, weight=normal, seed=4)
    t = m.T
    assert type(t) is Pre and t.shape == (17, 13) and t.conn_num == 5
    assert_same_arrays(m, t, '.T')
    assert_same_arrays(m, m.transpose(), 'transpose()')
    np.testing.assert_array_equal(np.asarray(t.todense()), np.asarray(m.todense()).T)
    back = t.T
    assert type(back) is Post and back.shape == m.shape
    assert_same_arrays(m, back, '.T.T')
    # the FixedPre generator is the transposed FixedPost generator, arrays and all
    for kw in ({'weight': normal}, {'weight': np.arange(65, dtype=np.float32).reshape(13, 5)},
               {'replace': True}):
        p = Pre(17, 13, 5, seed=4, **kw)
        q = Post(13, 17, 5, seed=4, **kw)
        assert type(p) is Pre and p.shape == (17, 13) and p.format == 'fixed_pre'
        assert np.asarray(p.indices).shape == (13, 5)
        assert_same_arrays(p, q.T, str(kw))
        assert_same_arrays(p.T, q, str(kw))
        np.testing.assert_array_equal(np.asarray(p.todense()), np.asarray(q.todense()).T)
    p = Pre(17, 17, 5, seed=1, allow_self_connections=False)
    assert_same_arrays(p, Post(17, 17, 5, seed=1, allow_self_connections=False).T)
    # keywords
    assert_same_arrays(Pre(num_pre=17, num_post=13, conn_num=5, weight=1.0, seed=4),
                       Pre(17, 13, 5, 1.0, 4))


# ---------------------------------------------------------------------------
# 6. Conversions
# ---------------------------------------------------------------------------

@class_param
def test_conversions_match_the_dense_reference(cls):
    m = cls(*ARGS[cls], weight=normal, seed=6)
    want = reference_dense(m)
    np.testing.assert_allclose(np.asarray(m.todense()), want, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(m.toarray()), want, rtol=1e-6)
    for name, conv, kind in (('tocoo', m.tocoo(), be.COO), ('tocsr', m.tocsr(), be.CSR),
                             ('tocsc', m.tocsc(), be.CSC)):
        assert type(conv) is kind, name
        assert conv.shape == m.shape and conv.nnz == m.nnz, name
        np.testing.assert_allclose(np.asarray(conv.todense()), want, rtol=1e-6, err_msg=name)
    s = m.to_scipy()
    assert sp.issparse(s) and s.shape == m.shape
    np.testing.assert_allclose(s.toarray(), want, rtol=1e-6)
    # homogeneous matrices convert too
    h = cls(*ARGS[cls], weight=0.5, seed=6)
    np.testing.assert_allclose(np.asarray(h.tocsr().todense()), reference_dense(h))
    np.testing.assert_allclose(h.to_scipy().toarray(), reference_dense(h))
    # conversions work inside jit
    d = jax.jit(lambda w: w.tocsr().todense())(m)
    np.testing.assert_allclose(np.asarray(d), want, rtol=1e-6)


def _sorted_rows(m):
    """Per row of ``m`` (a FixedPost), (target, weight) pairs sorted (order-free comparison)."""
    row, col, weights = entries(m)
    order = np.lexsort((weights, col, row))
    return row[order], col[order], weights[order]


def test_from_other_matrices_round_trips():
    m = Post(13, 17, 5, weight=normal, seed=8)
    want = reference_dense(m)
    for name, arg in (('CSR', m.tocsr()), ('COO', m.tocoo()), ('CSC', m.tocsc()),
                      ('scipy', sp.csr_array(want)), ('dense', want.astype(np.float32))):
        back = Post(arg)
        assert type(back) is Post and back.shape == m.shape and back.conn_num == 5, name
        assert np.asarray(back.indices).shape == (13, 5), name
        np.testing.assert_allclose(np.asarray(back.todense()), want, rtol=1e-6, err_msg=name)
        for a, b in zip(_sorted_rows(back), _sorted_rows(m)):
            np.testing.assert_allclose(a, b, rtol=1e-6, err_msg=name)
    np.testing.assert_allclose(np.asarray(Post.fromcoo(m.tocoo()).todense()), want, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(Post.fromdense(want.astype(np.float32)).todense()),
                               want, rtol=1e-6)
    # fromcoo of equal rows, one of them holding a duplicate (entries add)
    coo = be.COO((np.array([1.0, 2.0, 3.0, 4.0], np.float32),
                  (np.array([0, 1, 0, 1]), np.array([2, 0, 1, 0]))), shape=(2, 3))
    f = Post.fromcoo(coo)
    assert f.conn_num == 2
    np.testing.assert_allclose(np.asarray(f.todense()), [[0, 3, 1], [6, 0, 0]])
    # every row empty: conn_num 0
    z = Post(np.zeros((3, 4), np.float32))
    assert z.conn_num == 0 and z.nnz == 0 and np.asarray(z.indices).shape == (3, 0)
    assert np.array_equal(np.asarray(z.todense()), np.zeros((3, 4)))


@class_param
@pytest.mark.parametrize('weight', ['homogeneous', 'per-entry', 'units'])
def test_save_npz_round_trip(cls, weight, tmp_path):
    """``save_npz`` writes the CSR of the entries and ``load_npz`` restores the class, its
    arrays (rows in the same order), homogeneity and unit."""
    w = {'homogeneous': 0.5, 'per-entry': normal,
         'units': lambda key, shape: jax.random.uniform(key, shape) * u.mS}[weight]
    m = cls(*ARGS[cls], weight=w, seed=4)
    path = tmp_path / 'm.npz'
    be.save_npz(path, m)
    back = be.load_npz(path)
    assert type(back) is cls and back.shape == m.shape
    assert back.is_homogeneous == m.is_homogeneous and back.unit == m.unit
    assert_same_arrays(back, m, weight)
    if weight != 'units':  # scipy reads the file as the CSR of the same entries
        np.testing.assert_allclose(sp.load_npz(path).toarray(), reference_dense(m), rtol=1e-6)


UNEQUAL = np.array([[1, 0, 2, 0, 3, 0, 0], [4, 5, 6, 7, 8, 0, 0]], np.float32)  # 3 and 5
UNEQUAL_ODD = np.array([[1, 0, 2, 0, 3, 0, 0], [4, 5, 6, 7, 8, 9, 0]], np.float32)  # 3 and 6


@pytest.mark.parametrize('make', [
    lambda: Post(UNEQUAL), lambda: Post(sp.csr_array(UNEQUAL)), lambda: Post(be.CSR(UNEQUAL)),
    lambda: Post.fromcoo(be.COO(UNEQUAL)), lambda: Post.fromdense(UNEQUAL),
    lambda: Post(UNEQUAL_ODD)],
    ids=['dense', 'scipy', 'CSR', 'fromcoo', 'fromdense', 'dense, total not divisible'])
def test_rows_with_unequal_counts_are_refused(make):
    """The message names the row counts found (3 and 5, or 3 and 6: 9 entries do not divide
    among 2 rows, but the counts are what the user needs)."""
    with pytest.raises(ValueError) as info:
        make()
    message = str(info.value)
    counts = ('3', '5') if '5' in message else ('3', '6')
    assert all(c in message for c in counts) and 'row' in message, message


def test_with_data_forms():
    m = Post(13, 17, 5, weight=normal, seed=2)
    row, col, _ = entries(m)
    for d in (2.5, np.arange(65, dtype=np.float32).reshape(13, 5), np.arange(65, dtype=np.float32)):
        w = m.with_data(d)
        assert type(w) is Post
        assert np.array_equal(np.asarray(w.indices), np.asarray(m.indices))
        want = dense_of(m.shape, row, col, np.broadcast_to(np.asarray(d, np.float64).ravel(),
                                                           row.shape))
        np.testing.assert_allclose(np.asarray(w.todense()), want)
    assert m.with_data(2.5).is_homogeneous
    assert m.with_data(np.ones(65, np.float32)).data.shape == (13, 5)


@class_param
def test_element_wise_operations(cls):
    m = cls(*ARGS[cls], weight=normal, seed=3)
    d = reference_dense(m)
    for name, got, want in (('m * 2', m * 2, 2 * d), ('2 * m', 2 * m, 2 * d),
                            ('m / 4', m / 4, d / 4), ('-m', -m, -d)):
        assert type(got) is cls, name
        assert_close(got.todense(), want, what=name)
    assert_close(m.sum(), d.sum(), np.abs(d).sum(), what='sum()')
    assert_close(m.sum(0), d.sum(0), np.abs(d).sum(0), what='sum(0)')
    assert_close(m.sum(1), d.sum(1), np.abs(d).sum(1), what='sum(1)')


# ---------------------------------------------------------------------------
# 7. Products
# ---------------------------------------------------------------------------

MATRICES = {
    'post': lambda: Post(13, 17, 5, weight=normal, seed=4),
    'pre': lambda: Pre(17, 13, 5, weight=normal, seed=5),
    'post-homogeneous': lambda: Post(13, 17, 5, weight=-0.75, seed=4),
    'pre-explicit-duplicates': lambda: Pre(
        (np.linspace(-1, 1, 17 * 3, dtype=np.float32).reshape(17, 3),
         np.random.default_rng(0).integers(0, 13, (17, 3)).astype(np.int32)), shape=(13, 17)),
}
matrix_param = pytest.mark.parametrize('name', list(MATRICES))


@matrix_param
def test_products_match_dense(backend, name):
    """Event (bool and graded float spikes: a spike is x != 0) and float operands, vectors
    and matrices, on both sides, as BinaryArray, IndexedBinary, jax and numpy arrays."""
    m = MATRICES[name]()
    d = reference_dense(m)
    ad = np.abs(d)
    rng = np.random.default_rng(1)
    num_pre, num_post = m.shape
    for side, length in (('left', num_pre), ('right', num_post)):
        for shape in ((length,), (length, 3) if side == 'right' else (3, length)):
            spikes = rng.random(shape) < 0.4
            graded = (spikes * rng.uniform(-2, 2, shape)).astype(np.float32)
            mask = (graded != 0).astype(np.float64)
            indexed = (be.IndexedBinary1d if len(shape) == 1 else be.IndexedBinary2d).from_dense(
                jnp.asarray(spikes))
            operands = (('BinaryArray bool', be.BinaryArray(jnp.asarray(spikes)), spikes * 1.0),
                        ('BinaryArray float', be.BinaryArray(jnp.asarray(graded)), mask),
                        ('IndexedBinary', indexed, spikes * 1.0),
                        ('jax', jnp.asarray(graded), graded.astype(np.float64)),
                        ('numpy', graded, graded.astype(np.float64)))
            for what, operand, xr in operands:
                what = f"{name} {side} {what} {shape} ({backend})"
                out = operand @ m if side == 'left' else m @ operand
                want = xr @ d if side == 'left' else d @ xr
                magnitude = np.abs(xr) @ ad if side == 'left' else ad @ np.abs(xr)
                assert out.dtype == jnp.float32, what
                assert_close(out, want, magnitude, what=what)
                via = be.matmul(*((operand, m) if side == 'left' else (m, operand)))
                assert_close(via, want, magnitude, what='matmul ' + what)


@matrix_param
def test_transformations(backend, name):
    """jit (matrix as an argument), grad w.r.t. data (with_data) and float spike values,
    vmap over spikes and over data, lax.scan; against dense numpy."""
    m = MATRICES[name]()
    d = reference_dense(m)
    ad = np.abs(d)
    row, col, _ = entries(m)
    rng = np.random.default_rng(2)
    num_pre, num_post = m.shape
    s = (rng.random(num_pre) < 0.4).astype(np.float32)
    x = rng.normal(size=num_post).astype(np.float32)

    def sample(dense_grad):  # the dense weight gradient at the entries, shaped like data
        g = dense_grad[row, col]
        return np.sum(g).reshape(1) if m.is_homogeneous else g.reshape(m.data.shape)

    # jit with the matrix as an argument
    out = jax.jit(lambda w, v: be.BinaryArray(v) @ w)(m, s)
    assert_close(out, s @ d, s @ ad, what='jit left')
    out = jax.jit(lambda w, v: w @ v)(m, x)
    assert_close(out, d @ x, ad @ np.abs(x), what='jit right')

    # grad w.r.t. data, event product on the left
    r = rng.uniform(-1, 1, num_post)
    y = s @ d

    def loss(dd, v):
        return jnp.sum(jnp.sin(be.BinaryArray(v) @ m.with_data(dd)) * jnp.asarray(r, jnp.float32))

    g = jax.jit(jax.grad(loss))(m.data, s)
    assert g.shape == m.data.shape
    assert_close(g, sample(np.outer(s, np.cos(y) * r)), sample(np.outer(s, np.abs(r))),
                 what='grad w.r.t. data (left)')
    # grad w.r.t. float spike values: that of the dense product
    gs = jax.jit(jax.grad(loss, argnums=1))(m.data, s)
    assert_close(gs, (np.cos(y) * r) @ d.T, np.abs(r) @ ad.T, what='grad w.r.t. spikes')
    # grad w.r.t. data, float product on the right
    r2 = rng.uniform(-1, 1, num_pre)
    g = jax.jit(jax.grad(lambda dd: jnp.sum((m.with_data(dd) @ x) * r2)))(m.data)
    assert_close(g, sample(np.outer(r2, x)), sample(np.abs(np.outer(r2, x))),
                 what='grad w.r.t. data (right)')

    # vmap over spikes, and over stacked data
    batch = (rng.random((4, num_pre)) < 0.4).astype(np.float32)
    out = jax.jit(jax.vmap(lambda v: be.BinaryArray(v) @ m))(batch)
    assert_close(out, batch @ d, batch @ ad, what='vmap spikes')
    scales = np.array([1.0, -0.5, 2.0], np.float32)
    datas = jnp.asarray(np.stack([c * np.asarray(m.data) for c in scales]))
    out = jax.jit(jax.vmap(lambda dd: be.BinaryArray(s) @ m.with_data(dd)))(datas)
    assert_close(out, np.stack([c * (s @ d) for c in scales]), 2 * np.stack([s @ ad] * 3),
                 what='vmap data')
    right = (rng.random((3, num_post)) < 0.5).astype(np.float32)
    out = jax.jit(jax.vmap(lambda v: m @ be.BinaryArray(v)))(right)
    assert_close(out, right @ d.T, right @ ad.T, what='vmap spikes, right')

    # lax.scan: leaky accumulation of event products, data in the carry's closure
    steps = (rng.random((6, num_pre)) < 0.3).astype(np.float32)

    def run(dd):
        w = m.with_data(dd)

        def step(v, s_t):
            v = 0.9 * v + be.BinaryArray(s_t) @ w
            return v, v

        return jax.lax.scan(step, jnp.zeros(num_post, jnp.float32), jnp.asarray(steps))

    final, trace = jax.jit(run)(m.data)
    v, want, mag = np.zeros(num_post), [], np.zeros(num_post)
    for s_t in steps:
        v = 0.9 * v + s_t @ d
        mag = 0.9 * mag + s_t @ ad
        want.append(v)
    assert_close(trace, np.stack(want), 10 * (1 + mag), what='scan trace')
    assert_close(final, v, 10 * (1 + mag), what='scan final')


@functools.lru_cache(maxsize=1)
def _large():
    return Post(2000, 3000, 50, weight=normal, seed=9)


def test_larger_matrix_matches_dense(backend):
    """2000 x 3000, 50 targets per row: structure, and event and float products on both
    sides, of the matrix and of its transposed view (FixedPre)."""
    m = _large()
    idx = np.asarray(m.indices)
    assert idx.shape == (2000, 50) and idx.dtype == np.int32
    check_rows(idx, 3000, 50)
    d = reference_dense(m)
    ad = np.abs(d)
    rng = np.random.default_rng(3)
    pre_spikes = rng.random(2000) < 0.05
    post_spikes = rng.random(3000) < 0.05
    x_post = rng.normal(size=3000).astype(np.float32)
    x_pre = rng.normal(size=2000).astype(np.float32)
    batch = rng.random((4, 2000)) < 0.05
    checks = (
        ('spikes @ W', be.BinaryArray(pre_spikes) @ m, pre_spikes @ d, pre_spikes @ ad),
        ('batch @ W', be.BinaryArray(batch) @ m, batch @ d, batch @ ad),
        ('x @ W', jnp.asarray(x_pre) @ m, x_pre @ d, np.abs(x_pre) @ ad),
        ('W @ spikes', m @ be.BinaryArray(post_spikes), d @ post_spikes, ad @ post_spikes),
        ('W @ x', m @ jnp.asarray(x_post), d @ x_post, ad @ np.abs(x_post)),
        ('spikes @ W.T', be.BinaryArray(post_spikes) @ m.T, post_spikes @ d.T,
         post_spikes @ ad.T),
        ('W.T @ x', m.T @ jnp.asarray(x_pre), d.T @ x_pre, ad.T @ np.abs(x_pre)),
    )
    for what, got, want, magnitude in checks:
        assert_close(got, want, magnitude, what=f"{what} ({backend})")


# ---------------------------------------------------------------------------
# 8. Bad input
# ---------------------------------------------------------------------------

def _matrix():
    return Post(13, 17, 5, weight=normal, seed=0)


BAD = [
    ('conn_num > num_post', lambda: Post(4, 3, 4), ValueError, 'conn_num'),
    ('conn_num > num_post, keywords', lambda: Post(num_pre=2, num_post=5, conn_num=6),
     ValueError, 'conn_num'),
    ('FixedPre conn_num > num_pre', lambda: Pre(3, 5, 4), ValueError, 'conn_num'),
    ('conn_num = num_post without self', lambda: Post(3, 3, 3, allow_self_connections=False),
     ValueError, 'conn_num'),
    ('negative conn_num', lambda: Post(3, 4, -1), (ValueError, TypeError), 'conn_num'),
    ('negative conn_num with replace', lambda: Post(3, 4, -2, replace=True),
     (ValueError, TypeError), 'conn_num'),
    ('float conn_num', lambda: Post(3, 4, 2.5), (TypeError, ValueError), 'conn_num'),
    ('str conn_num', lambda: Post(3, 4, '2'), (TypeError, ValueError), 'conn_num'),
    ('self connections, non-square', lambda: Post(3, 4, 2, allow_self_connections=False),
     ValueError, 'allow_self_connections'),
    ('FixedPre self connections, non-square',
     lambda: Pre(5, 4, 2, allow_self_connections=False), ValueError, 'allow_self_connections'),
    ('weight array shape', lambda: Post(13, 17, 5, weight=np.ones((13, 4), np.float32)),
     ValueError, 'weight'),
    ('indices 1-D', lambda: Post((1.0, np.arange(6) % 4), shape=(3, 4)), ValueError, 'indices'),
    ('indices rows != num_pre', lambda: Post((1.0, np.zeros((2, 2), np.int32)), shape=(3, 4)),
     ValueError, 'indices'),
    ('FixedPre indices rows != num_post',
     lambda: Pre((1.0, np.zeros((3, 2), np.int32)), shape=(3, 4)), ValueError, 'indices'),
    ('data shape', lambda: Post((np.ones((3, 3), np.float32), np.zeros((3, 2), np.int32)),
                                shape=(3, 4)), ValueError, 'data'),
    ('data 1-D of the wrong length', lambda: Post((np.ones(5, np.float32),
                                                   np.zeros((3, 2), np.int32)), shape=(3, 4)),
     ValueError, 'data'),
    ('with_data shape', lambda: _matrix().with_data(np.ones(5, np.float32)), ValueError, 'data'),
    ('with_data 2-D shape', lambda: _matrix().with_data(np.ones((5, 13), np.float32)),
     ValueError, 'data'),
    ('index out of range', lambda: Post((1.0, np.array([[0, 4], [1, 2]], np.int32)),
                                        shape=(2, 4)).check_format(), ValueError, 'indices'),
    ('negative index', lambda: Post((1.0, np.array([[0, 1], [-1, 2]], np.int32)),
                                    shape=(2, 4)).check_format(), ValueError, 'indices'),
    ('FixedPre index out of range', lambda: Pre((1.0, np.array([[0, 3], [1, 2]], np.int32)),
                                                shape=(3, 2)).check_format(),
     ValueError, 'indices'),
]


@pytest.mark.parametrize('case', BAD, ids=[c[0] for c in BAD])
def test_bad_input_is_rejected_with_a_clear_message(case):
    _, make, kind, name = case
    with pytest.raises(kind, match=name):
        make()


def test_valid_edge_arguments_are_accepted():
    """The limits just inside the errors above."""
    assert Post(3, 3, 2, allow_self_connections=False).conn_num == 2
    assert Post(4, 3, 3).conn_num == 3
    assert Post(4, 3, 7, replace=True).conn_num == 7
    assert Post(3, 4, 0).nnz == 0
    Post((1.0, np.array([[0, 3], [1, 2]], np.int32)), shape=(2, 4)).check_format()
    Post(13, 17, 5, seed=2).check_format()
