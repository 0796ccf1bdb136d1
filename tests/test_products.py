"""Products of every format with every operand kind, on both sides, against dense numpy.

The contract tested here:

* A connectivity matrix has shape ``(m, n) = (num_pre, num_post)``. ``x @ W``
  takes ``(m,)`` or ``(k, m)``; ``W @ x`` takes ``(n,)`` or ``(n, k)``.
* An event product (``BinaryArray``, ``IndexedBinary1d``/``2d``) equals the
  dense product of ``(x != 0)`` cast to the weight dtype; a product with a
  plain array is the ordinary dense product. Dense 2-D weights multiply event
  arrays on both sides as event products too.
* Gradients: with respect to float spike values wrapped in ``BinaryArray`` the
  gradient is that of the dense product as if the spikes were floats; with
  respect to the weights (``m.with_data(d)``) it is the dense weight gradient
  sampled at each stored entry (summed over all entries for homogeneous data).
* ``jvp``, ``vmap`` (over spikes, over weights, over both), ``lax.scan`` and
  ``jit`` (matrix closed over or passed as an argument) agree with numpy.

References are computed in float64 numpy. Float64 work runs inside
``precision(np.float64)`` (JAX has x64 off by default).

Cost: JAX compiles once per new shape, and compiling dominates the run time.
Matrices are therefore built from numpy-computed arrays (no conversion
kernels), traced checks run under one ``jit`` each, and every combination of
format x operand kind x side is a pytest parameter with a few hypothesis
examples.
"""

import contextlib

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings, strategies as st

import jax
import jax.numpy as jnp

import brainevent as be
from brainevent.formats import SparseMatrix
from strategies import FORMATS, Case, cases, dense_of, precision, spikes

# The whole conformance suite runs once per CPU backend (fixture in conftest.py).
pytestmark = pytest.mark.usefixtures('backend')

OPERAND_KINDS = ('binary', 'indexed', 'jax', 'numpy')
EVENT_KINDS = ('binary', 'indexed')
TRACEABLE_KINDS = ('binary', 'indexed', 'jax')  # operands that can be built from a tracer
SIDES = ('left', 'right')  # left: x @ W, right: W @ x
SPIKE_KINDS = ('bool', 'float', 'zeros', 'ones')
MAX_DIM = 6

format_param = pytest.mark.parametrize('cls', FORMATS, ids=lambda c: c.__name__)
side_param = pytest.mark.parametrize('side', SIDES)
seeds = st.integers(0, 2 ** 31)
ndims = st.sampled_from([1, 2])


def examples(n: int):
    """``n`` hypothesis examples under the 'ci' profile (12 by default), scaled with it."""
    return settings(max_examples=max(1, n * settings.default.max_examples // 12))


# ---------------------------------------------------------------------------
# Helpers: matrices, operands, dense references, tolerances
# ---------------------------------------------------------------------------

def tolerance(dtype) -> float:
    return 1e-5 if np.dtype(dtype) == np.float32 else 1e-10


def assert_close(actual, expected, dtype, magnitude=None, what='value'):
    """``|actual - expected| <= tol * (1 + magnitude)`` element-wise.

    ``magnitude`` bounds the size of the terms summed into each element (the
    same computation on absolute values), so that float32 sums of many terms
    are held to a relative, not an absolute, tolerance.
    """
    actual = np.asarray(actual)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    if magnitude is None:
        magnitude = np.abs(expected)
    bound = tolerance(dtype) * (1.0 + np.asarray(magnitude, np.float64))
    err = np.abs(actual.astype(np.float64) - expected)
    assert np.all(err <= bound), (
        f"{what} differs from the dense reference (dtype {np.dtype(dtype)}): max error "
        f"{err.max(initial=0):.3g}\nactual={actual}\nexpected={expected}")


class Built:
    """A matrix of ``cls`` and, in numpy, the coordinates of its ``data`` elements."""

    def __init__(self, case: Case, cls):
        m, n = case.shape
        row, col, data = case.row, case.col, case.data
        homogeneous = data.shape != row.shape
        if cls is be.COO:
            order = np.arange(row.size)
            self.matrix = be.COO((data, (row, col)), shape=case.shape)
        else:  # CSR: sorted by row, CSC: sorted by column (stable: duplicates kept)
            major, minor, size = (row, col, m) if cls is be.CSR else (col, row, n)
            order = np.argsort(major, kind='stable')
            indptr = np.concatenate([[0], np.cumsum(np.bincount(major, minlength=size))])
            self.matrix = cls((data if homogeneous else data[order], minor[order],
                               indptr.astype(np.int32)), shape=case.shape)
        self.row, self.col = row[order], col[order]
        self.data = np.asarray(self.matrix.data)
        self.shape = case.shape
        self.dtype = case.data.dtype
        self.dense = case.dense.astype(np.float64)
        self.abs_dense = self.dense_with(np.abs(self.data))

    def dense_with(self, data):
        """The dense matrix of this structure with weights ``data`` (float64)."""
        data = np.broadcast_to(np.asarray(data, np.float64), self.row.shape)
        return dense_of(self.shape, self.row, self.col, data)

    def sample(self, dense_grad):
        """A dense weight gradient sampled at the stored entries (summed if homogeneous)."""
        g = np.asarray(dense_grad)[self.row, self.col]
        return g if g.shape == self.data.shape else np.sum(g).reshape(self.data.shape)


def operand_shape(side, shape, ndim, k):
    m, n = shape
    if side == 'left':
        return (m,) if ndim == 1 else (k, m)
    return (n,) if ndim == 1 else (n, k)


def spike_values(rng, shape, spike_kind, dtype):
    """Spikes of ``spike_kind``; 'float' spikes are graded (nonzero values other than 1)."""
    x = spikes(rng, shape, spike_kind)
    if spike_kind == 'bool':
        return x
    if spike_kind == 'float':
        x = x * rng.uniform(0.25, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
    return np.asarray(x, dtype)


_from_dense = {1: jax.jit(be.IndexedBinary1d.from_dense),
               2: jax.jit(be.IndexedBinary2d.from_dense)}


def make_operand(kind, x):
    """Wrap the (numpy or traced) values ``x`` as an operand of ``kind``."""
    if kind == 'binary':
        return be.BinaryArray(jnp.asarray(x))
    if kind == 'indexed':
        if isinstance(x, jax.core.Tracer):
            cls = be.IndexedBinary1d if x.ndim == 1 else be.IndexedBinary2d
            return cls.from_dense(x)
        return _from_dense[np.ndim(x)](jnp.asarray(x))  # one compile per shape
    if kind == 'jax':
        return jnp.asarray(x)
    if kind == 'numpy':
        return np.asarray(x)
    raise ValueError(kind)


def reference_operand(kind, x):
    """What the product uses: the spike mask for event kinds, the values otherwise."""
    x = np.asarray(x)
    if kind in EVENT_KINDS:
        return (x != 0).astype(np.float64)
    return x.astype(np.float64)


def apply(side, matrix, operand):
    return operand @ matrix if side == 'left' else matrix @ operand


def dense_apply(side, dense, x):
    return x @ dense if side == 'left' else dense @ x


def dense_grads(side, dense, x, ct):
    """Cotangents of ``out = dense_apply(side, dense, x)`` for output cotangent ``ct``."""
    if side == 'left':  # out = x @ D
        dx = ct @ dense.T
        dd = np.outer(x, ct) if x.ndim == 1 else x.T @ ct
    else:  # out = D @ x
        dx = dense.T @ ct
        dd = np.outer(ct, x) if x.ndim == 1 else ct @ x.T
    return dx, dd


def check_forward(built, kind, side, x, what=''):
    """Eager product of ``built.matrix`` with ``x`` wrapped as ``kind``, against numpy."""
    out = apply(side, built.matrix, make_operand(kind, x))
    xr = reference_operand(kind, x)
    what = f"{type(built.matrix).__name__} {kind} {side} {what} shape={built.shape}"
    assert out.dtype == built.dtype, f"{what}: result dtype {out.dtype}"
    assert_close(out, dense_apply(side, built.dense, xr), built.dtype,
                 dense_apply(side, built.abs_dense, np.abs(xr)), what=what)


def make_case(shape, row, col, data, dtype):
    row, col = np.asarray(row, np.int32), np.asarray(col, np.int32)
    data = np.asarray(data, dtype)
    return Case(tuple(shape), row, col, data, dense_of(shape, row, col, data))


EDGE_RAW = {
    '0x4': ((0, 4), [], [], []),
    '4x0': ((4, 0), [], [], []),
    '0x0': ((0, 0), [], [], []),
    '1x1': ((1, 1), [0], [0], [1.5]),
    '1x1-empty': ((1, 1), [], [], []),
    'no-entries': ((3, 2), [], [], []),
    'empty-rows-cols': ((5, 4), [1, 3, 3, 1], [0, 2, 0, 2], [0.5, -1.25, 2.0, 0.75]),
    'duplicates': ((3, 4), [2, 0, 2, 1, 0, 2], [3, 1, 3, 0, 1, 3],
                   [1.0, -0.5, 0.25, 2.0, 1.5, -1.0]),
    'homogeneous-duplicates': ((3, 3), [0, 2, 0, 1], [1, 2, 1, 0], [-0.75]),
}
EDGE_FLOAT64 = ('0x4', '1x1', 'empty-rows-cols', 'duplicates', 'homogeneous-duplicates')


def edge_params(names=tuple(EDGE_RAW), float64=EDGE_FLOAT64):
    params = []
    for name in names:
        for dtype in (np.float32, np.float64):
            if dtype == np.float64 and name not in float64:
                continue
            params.append(pytest.param(make_case(*EDGE_RAW[name], dtype),
                                       id=f"{name}-{np.dtype(dtype).name}"))
    return params


# ---------------------------------------------------------------------------
# Structure: the coordinates of the stored entries follow data order
# ---------------------------------------------------------------------------

@format_param
@examples(4)
@given(case=cases(max_dim=MAX_DIM))
def test_tocoo_coordinates_follow_data_order(cls, case):
    """``m.tocoo()`` gives (row, col) of every element of ``m.data``, in order.

    The weight-gradient tests rely on this (for CSC too): built through the
    library's conversions or from raw arrays, the entries' coordinates and the
    data rebuild the dense matrix.
    """
    with precision(case.data.dtype):
        built = Built(case, cls)
        for matrix, row, col in ((case.build(cls), None, None),
                                 (built.matrix, built.row, built.col)):
            coo = matrix.tocoo()
            r, c = np.asarray(coo.row), np.asarray(coo.col)
            assert r.shape == c.shape == (matrix.nnz,)
            np.testing.assert_array_equal(np.asarray(coo.data), np.asarray(matrix.data))
            data = np.broadcast_to(np.asarray(matrix.data, np.float64), r.shape)
            np.testing.assert_allclose(dense_of(case.shape, r, c, data), case.dense,
                                       rtol=tolerance(case.data.dtype), atol=1e-5)
            if row is not None:
                np.testing.assert_array_equal(r, row)
                np.testing.assert_array_equal(c, col)


# ---------------------------------------------------------------------------
# Forward products
# ---------------------------------------------------------------------------

@side_param
@pytest.mark.parametrize('kind', OPERAND_KINDS)
@format_param
@examples(3)
@given(case=cases(max_dim=MAX_DIM), ndim=ndims, k=st.integers(0, 3),
       spike_kind=st.sampled_from(SPIKE_KINDS), seed=seeds)
def test_product_matches_dense(cls, kind, side, case, ndim, k, spike_kind, seed):
    rng = np.random.default_rng(seed)
    with precision(case.data.dtype):
        built = Built(case, cls)
        x = spike_values(rng, operand_shape(side, case.shape, ndim, k), spike_kind,
                         case.data.dtype)
        check_forward(built, kind, side, x, f"ndim={ndim} {spike_kind}")


@pytest.mark.parametrize('case', edge_params())
@format_param
def test_product_edge_cases(cls, case):
    """0-row/0-column, 1x1, empty rows/columns, duplicates, homogeneous data; both sides,
    vectors and matrices, every operand kind, bool / graded float / all-zero / all-one spikes."""
    rng = np.random.default_rng(0)
    dtype = case.data.dtype
    with precision(dtype):
        built = Built(case, cls)
        for side in SIDES:
            vec = operand_shape(side, case.shape, 1, 0)
            for spike_kind in ('float', 'zeros', 'ones', 'bool'):
                check_forward(built, 'binary', side, spike_values(rng, vec, spike_kind, dtype),
                              f"vector {spike_kind}")
            x = spike_values(rng, vec, 'float', dtype)
            check_forward(built, 'indexed', side, x, 'vector')
            check_forward(built, 'jax', side, x, 'vector')
            mat = operand_shape(side, case.shape, 2, 2)
            x = spike_values(rng, mat, 'bool', dtype)
            check_forward(built, 'binary', side, x, 'matrix bool')
            check_forward(built, 'indexed', side, x, 'matrix')
            check_forward(built, 'numpy', side, spike_values(rng, mat, 'float', dtype),
                          'matrix')


@pytest.mark.parametrize('spike_kind', ['zeros', 'ones'])
@format_param
def test_all_zero_and_all_one_spikes(cls, spike_kind):
    """No spikes give zeros; all spikes give column sums (left) or row sums (right)."""
    case = make_case(*EDGE_RAW['duplicates'], np.float32)
    built = Built(case, cls)
    m, n = case.shape
    ones = spike_kind == 'ones'
    for kind in EVENT_KINDS:
        left = make_operand(kind, spikes(None, (m,), spike_kind)) @ built.matrix
        right = built.matrix @ make_operand(kind, spikes(None, (n,), spike_kind))
        assert_close(left, case.dense.sum(0) if ones else np.zeros(n), np.float32, 10.0)
        assert_close(right, case.dense.sum(1) if ones else np.zeros(m), np.float32, 10.0)


@pytest.mark.parametrize('weights', ['jax', 'numpy'])
@side_param
@pytest.mark.parametrize('kind', EVENT_KINDS)
@examples(4)
@given(case=cases(max_dim=MAX_DIM), ndim=ndims, k=st.integers(0, 3),
       spike_kind=st.sampled_from(SPIKE_KINDS), seed=seeds)
def test_event_product_with_dense_weights(kind, side, weights, case, ndim, k, spike_kind, seed):
    """``events @ W`` and ``W @ events`` with a dense 2-D ``W`` are event products."""
    rng = np.random.default_rng(seed)
    dtype = case.data.dtype
    with precision(dtype):
        w = jnp.asarray(case.dense) if weights == 'jax' else case.dense
        x = spike_values(rng, operand_shape(side, case.shape, ndim, k), spike_kind, dtype)
        out = apply(side, w, make_operand(kind, x))
        xr = reference_operand(kind, x)
        dense = case.dense.astype(np.float64)
        assert out.dtype == dtype
        assert_close(out, dense_apply(side, dense, xr), dtype,
                     dense_apply(side, np.abs(dense), np.abs(xr)))


@side_param
@examples(4)
@given(case=cases(max_dim=MAX_DIM), ndim=ndims, seed=seeds)
def test_event_product_with_dense_weights_gradients(side, case, ndim, seed):
    """Dense weights: gradients w.r.t. float spikes and w.r.t. ``W`` are the dense ones."""
    rng = np.random.default_rng(seed)
    dtype = case.data.dtype
    with precision(dtype):
        x = (spike_values(rng, operand_shape(side, case.shape, ndim, 2), 'float', dtype)
             != 0).astype(dtype)  # 0/1 float spikes: event and float forward values agree
        dense = case.dense.astype(np.float64)
        y = dense_apply(side, dense, x.astype(np.float64))
        r = rng.uniform(-1, 1, y.shape)
        dx, dd = dense_grads(side, dense, x.astype(np.float64), np.cos(y) * r)

        def loss(w, s):
            return jnp.sum(jnp.sin(apply(side, w, be.BinaryArray(s))) * jnp.asarray(r, dtype))

        gw, gs = jax.jit(jax.grad(loss, argnums=(0, 1)))(jnp.asarray(case.dense),
                                                          jnp.asarray(x))
        adx, add = dense_grads(side, np.abs(dense), np.abs(x).astype(np.float64), np.abs(r))
        assert_close(gs, dx, dtype, adx, what='spike gradient')
        assert_close(gw, dd, dtype, add, what='weight gradient')


@side_param
@examples(3)
@given(case=cases(max_dim=MAX_DIM), kind=st.sampled_from(EVENT_KINDS), ndim=ndims,
       batch=st.integers(1, 3), seed=seeds)
def test_event_product_with_dense_weights_transforms(side, case, kind, ndim, batch, seed):
    """Dense weights under jit (weights and events as arguments), vmap over the spikes,
    vmap over stacked weights, and jvp."""
    rng = np.random.default_rng(seed)
    dtype = case.data.dtype
    with precision(dtype):
        w = case.dense
        dense, abs_w = w.astype(np.float64), np.abs(w.astype(np.float64))
        shape = operand_shape(side, case.shape, ndim, 2)
        xs = spike_values(rng, (batch,) + shape, 'float', dtype)
        refs = [reference_operand(kind, x) for x in xs]

        out = jax.jit(lambda w_, e: apply(side, w_, e))(w, make_operand(kind, xs[0]))
        assert_close(out, dense_apply(side, dense, refs[0]), dtype,
                     dense_apply(side, abs_w, refs[0]), what='jit')

        out = jax.jit(jax.vmap(lambda s: apply(side, jnp.asarray(w), make_operand(kind, s))))(
            jnp.asarray(xs))
        assert_close(out, np.stack([dense_apply(side, dense, x) for x in refs]), dtype,
                     np.stack([dense_apply(side, abs_w, x) for x in refs]), what='vmap spikes')

        scales = rng.uniform(-2, 2, batch).astype(dtype)
        ws = jnp.asarray(np.stack([c * w for c in scales]))
        operand = make_operand(kind, xs[0])
        out = jax.jit(jax.vmap(lambda w_: apply(side, w_, operand)))(ws)
        assert_close(out, np.stack([c * dense_apply(side, dense, refs[0]) for c in scales]),
                     dtype, 2 * np.stack([dense_apply(side, abs_w, refs[0])] * batch),
                     what='vmap weights')

        tw = rng.uniform(-1, 1, w.shape).astype(dtype)
        _, t_out = jax.jit(lambda p, t: jax.jvp(lambda w_: apply(side, w_, operand), p, t))(
            (jnp.asarray(w),), (jnp.asarray(tw),))
        assert_close(t_out, dense_apply(side, tw.astype(np.float64), refs[0]), dtype,
                     dense_apply(side, np.abs(tw).astype(np.float64), refs[0]), what='jvp')


# ---------------------------------------------------------------------------
# Gradients, JVP
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('kind', ['binary', 'jax'])
@side_param
@format_param
@examples(3)
@given(case=cases(max_dim=MAX_DIM), ndim=ndims, k=st.integers(1, 3),
       spike_kind=st.sampled_from(['float', 'zeros', 'ones']), seed=seeds)
def test_gradient_wrt_spike_values(cls, side, kind, case, ndim, k, spike_kind, seed):
    """grad of f(BinaryArray(s) @ W) w.r.t. s equals grad of f(s @ dense) (0/1 float spikes)."""
    rng = np.random.default_rng(seed)
    dtype = case.data.dtype
    with precision(dtype):
        built = Built(case, cls)
        x = spike_values(rng, operand_shape(side, case.shape, ndim, k), spike_kind, dtype)
        if kind == 'binary':
            x = (x != 0).astype(dtype)  # forward values of event and float products agree
        y = dense_apply(side, built.dense, x.astype(np.float64))
        r = rng.uniform(-1, 1, y.shape)
        dx, _ = dense_grads(side, built.dense, x.astype(np.float64), np.cos(y) * r)

        def loss(s):
            return jnp.sum(jnp.sin(apply(side, built.matrix, make_operand(kind, s)))
                           * jnp.asarray(r, dtype))

        g = jax.jit(jax.grad(loss))(jnp.asarray(x))
        assert g.dtype == x.dtype
        adx, _ = dense_grads(side, built.abs_dense, np.abs(x).astype(np.float64), np.abs(r))
        assert_close(g, dx, dtype, adx, what='spike gradient')


@side_param
@pytest.mark.parametrize('kind', OPERAND_KINDS)
@format_param
@examples(4)
@given(case=cases(max_dim=MAX_DIM), ndim=ndims, k=st.integers(0, 3),
       spike_kind=st.sampled_from(SPIKE_KINDS), seed=seeds)
def test_gradient_wrt_weights(cls, kind, side, case, ndim, k, spike_kind, seed):
    """grad w.r.t. ``d`` in ``m.with_data(d)`` = dense gradient sampled at each entry."""
    rng = np.random.default_rng(seed)
    dtype = case.data.dtype
    with precision(dtype):
        built = Built(case, cls)
        x = spike_values(rng, operand_shape(side, case.shape, ndim, k), spike_kind, dtype)
        xr = reference_operand(kind, x)
        y = dense_apply(side, built.dense, xr)
        r = rng.uniform(-1, 1, y.shape)
        _, dd = dense_grads(side, built.dense, xr, np.cos(y) * r)
        operand = make_operand(kind, x)
        matrix = built.matrix

        def loss(d):
            return jnp.sum(jnp.sin(apply(side, matrix.with_data(d), operand))
                           * jnp.asarray(r, dtype))

        g = jax.jit(jax.grad(loss))(matrix.data)
        assert g.shape == matrix.data.shape and g.dtype == dtype
        _, add = dense_grads(side, built.dense, np.abs(xr), np.abs(r))
        assert_close(g, built.sample(dd), dtype, built.sample(np.abs(add)),
                     what='weight gradient')


@pytest.mark.parametrize('case', edge_params(float64=()))
@format_param
def test_gradients_edge_cases(cls, case):
    """Weight and spike gradients on the edge cases: vectors on the left, matrices on the right."""
    rng = np.random.default_rng(1)
    dtype = case.data.dtype
    built = Built(case, cls)
    for side, ndim in (('left', 1), ('right', 2)):
        x = np.ones(operand_shape(side, case.shape, ndim, 3), dtype)
        x[..., ::2] = 0
        y = dense_apply(side, built.dense, x.astype(np.float64))
        r = rng.uniform(-1, 1, y.shape)
        dx, dd = dense_grads(side, built.dense, x.astype(np.float64), r)

        def loss(d, s):
            out = apply(side, built.matrix.with_data(d), be.BinaryArray(s))
            return jnp.sum(out * jnp.asarray(r, dtype))

        gd, gs = jax.jit(jax.grad(loss, argnums=(0, 1)))(built.matrix.data, jnp.asarray(x))
        assert_close(gd, built.sample(dd), dtype, 10.0, what=f'weight gradient {side}')
        assert_close(gs, dx, dtype, 10.0, what=f'spike gradient {side}')


@side_param
@pytest.mark.parametrize('kind', TRACEABLE_KINDS)
@format_param
@examples(3)
@given(case=cases(max_dim=MAX_DIM), ndim=ndims, seed=seeds)
def test_jvp(cls, kind, side, case, ndim, seed):
    """jvp in the weights and (for float spikes and arrays) in the operand values."""
    rng = np.random.default_rng(seed)
    dtype = case.data.dtype
    with precision(dtype):
        built = Built(case, cls)
        matrix = built.matrix
        x = spike_values(rng, operand_shape(side, case.shape, ndim, 2), 'float', dtype)
        xr = reference_operand(kind, x)
        td = rng.uniform(-1, 1, matrix.data.shape).astype(dtype)
        tx = rng.uniform(-1, 1, x.shape).astype(dtype)
        tdense = built.dense_with(td)
        magnitude = dense_apply(side, built.abs_dense + np.abs(tdense), np.abs(xr) + np.abs(tx))
        if kind == 'indexed':  # integer structure: a tangent in the weights only
            def f(w, s):
                return apply(side, matrix.with_data(w), make_operand(kind, s))

            out, t_out = jax.jit(lambda w, s, t: jax.jvp(lambda w_: f(w_, s), (w,), (t,)))(
                matrix.data, jnp.asarray(x), jnp.asarray(td))
            expected_t = dense_apply(side, tdense, xr)
        else:
            def f(w, s):
                return apply(side, matrix.with_data(w), make_operand(kind, s))

            out, t_out = jax.jit(lambda p, t: jax.jvp(f, p, t))(
                (matrix.data, jnp.asarray(x)), (jnp.asarray(td), jnp.asarray(tx)))
            # the tangent in the spikes is that of the float product, even for events
            expected_t = dense_apply(side, tdense, xr) + dense_apply(side, built.dense, tx)
        assert_close(out, dense_apply(side, built.dense, xr), dtype, magnitude, what='primal')
        assert_close(t_out, expected_t, dtype, magnitude, what='tangent')


# ---------------------------------------------------------------------------
# vmap, scan, jit
# ---------------------------------------------------------------------------

@side_param
@pytest.mark.parametrize('kind', TRACEABLE_KINDS)
@format_param
@examples(3)
@given(case=cases(max_dim=MAX_DIM), ndim=ndims, batch=st.integers(0, 4),
       spike_kind=st.sampled_from(SPIKE_KINDS), axis=st.integers(0, 2), seed=seeds)
def test_vmap_over_spikes(cls, kind, side, case, ndim, batch, spike_kind, axis, seed):
    """vmap of a vector (or matrix) product equals the stacked dense products, and for
    vectors the matrix product; the batch axis of the spikes may be any axis."""
    rng = np.random.default_rng(seed)
    dtype = case.data.dtype
    with precision(dtype):
        built = Built(case, cls)
        shape = operand_shape(side, case.shape, ndim, 2)
        xs = spike_values(rng, (batch,) + shape, spike_kind, dtype)
        axis = min(axis, ndim)
        f = jax.vmap(lambda s: apply(side, built.matrix, make_operand(kind, s)), in_axes=axis)
        out = jax.jit(f)(jnp.moveaxis(jnp.asarray(xs), 0, axis))
        one = dense_apply(side, built.dense, np.zeros(shape)).shape
        expected = np.zeros((batch,) + one)
        magnitude = np.zeros((batch,) + one)
        for i, x in enumerate(xs):
            xr = reference_operand(kind, x)
            expected[i] = dense_apply(side, built.dense, xr)
            magnitude[i] = dense_apply(side, built.abs_dense, np.abs(xr))
        assert_close(out, expected, dtype, magnitude, what='vmap')
        if ndim == 1:  # vmap of the vector product == the matrix product
            stacked = xs if side == 'left' else xs.T
            direct = np.asarray(apply(side, built.matrix, make_operand(kind, stacked)))
            assert_close(out, direct if side == 'left' else direct.T, dtype, magnitude,
                         what='vmap vs matrix product')


@pytest.mark.parametrize('batched', ['weights', 'both'])
@side_param
@format_param
@examples(3)
@given(case=cases(max_dim=MAX_DIM), kind=st.sampled_from(TRACEABLE_KINDS), ndim=ndims,
       batch=st.integers(1, 3), seed=seeds)
def test_vmap_over_weights(cls, side, batched, case, kind, ndim, batch, seed):
    """vmap over stacked data arrays (``m.with_data``), optionally over the spikes too."""
    rng = np.random.default_rng(seed)
    dtype = case.data.dtype
    with precision(dtype):
        built = Built(case, cls)
        matrix = built.matrix
        shape = operand_shape(side, case.shape, ndim, 2)
        ds = rng.uniform(-2, 2, (batch,) + matrix.data.shape).astype(dtype)
        if batched == 'weights':
            x = spike_values(rng, shape, 'float', dtype)
            operand = make_operand(kind, x)
            out = jax.jit(jax.vmap(lambda d: apply(side, matrix.with_data(d), operand)))(
                jnp.asarray(ds))
            xs = [x] * batch
        else:
            xs = spike_values(rng, (batch,) + shape, 'float', dtype)
            out = jax.jit(jax.vmap(
                lambda d, s: apply(side, matrix.with_data(d), make_operand(kind, s))))(
                jnp.asarray(ds), jnp.asarray(xs))
        expected, magnitude = [], []
        for d, x in zip(ds, xs):
            xr = reference_operand(kind, x)
            expected.append(dense_apply(side, built.dense_with(d), xr))
            magnitude.append(dense_apply(side, built.dense_with(np.abs(d)), np.abs(xr)))
        assert_close(out, np.stack(expected), dtype, np.stack(magnitude))


@side_param
@format_param
@examples(3)
@given(case=cases(max_dim=MAX_DIM), kind=st.sampled_from(TRACEABLE_KINDS), ndim=ndims,
       batch=st.integers(0, 3), seed=seeds)
def test_vmap_of_weight_gradient(cls, side, case, kind, ndim, batch, seed):
    """Per-example weight gradients: vmap over the spikes of grad w.r.t. the data."""
    rng = np.random.default_rng(seed)
    dtype = case.data.dtype
    with precision(dtype):
        built = Built(case, cls)
        xs = spike_values(rng, (batch,) + operand_shape(side, case.shape, ndim, 2), 'float',
                          dtype)
        one = dense_apply(side, built.dense, np.zeros(xs.shape[1:])).shape
        r = rng.uniform(-1, 1, one)

        def loss(d, s):
            out = apply(side, built.matrix.with_data(d), make_operand(kind, s))
            return jnp.sum(out * jnp.asarray(r, dtype))

        g = jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0)))(built.matrix.data,
                                                                 jnp.asarray(xs))
        expected = np.zeros((batch,) + built.data.shape)
        magnitude = np.zeros_like(expected)
        for i, x in enumerate(xs):
            xr = reference_operand(kind, x)
            expected[i] = built.sample(dense_grads(side, built.dense, xr, r)[1])
            magnitude[i] = built.sample(np.abs(dense_grads(side, built.dense, np.abs(xr),
                                                           np.abs(r))[1]))
        assert_close(g, expected, dtype, magnitude, what='vmap of grad w.r.t. data')


@side_param
@format_param
@examples(3)
@given(case=cases(max_dim=MAX_DIM), kind=st.sampled_from(EVENT_KINDS), steps=st.integers(1, 5),
       seed=seeds)
def test_scan_accumulates_events_over_time(cls, side, case, kind, steps, seed):
    """lax.scan over time steps accumulating event products, and its weight gradient."""
    rng = np.random.default_rng(seed)
    dtype = case.data.dtype
    with precision(dtype):
        built = Built(case, cls)
        xs = spike_values(rng, (steps,) + operand_shape(side, case.shape, 1, 0), 'bool', dtype)
        out_len = case.shape[1] if side == 'left' else case.shape[0]

        def run(d):
            w = built.matrix.with_data(d)

            def step(acc, x_t):
                acc = acc + apply(side, w, make_operand(kind, x_t))
                return acc, acc

            return jax.lax.scan(step, jnp.zeros(out_len, dtype), jnp.asarray(xs))

        final, trace = jax.jit(run)(built.matrix.data)
        per_step = np.stack([dense_apply(side, built.dense, reference_operand(kind, x))
                             for x in xs])
        magnitude = np.cumsum(np.stack([dense_apply(side, built.abs_dense, x.astype(float))
                                        for x in xs]), axis=0)
        assert_close(trace, np.cumsum(per_step, axis=0), dtype, magnitude, what='trace')
        assert_close(final, per_step.sum(0), dtype, magnitude[-1], what='final')
        # d/d data of sum(final * r): the dense gradient of all steps, sampled at the entries
        r = rng.uniform(-1, 1, out_len)
        g = jax.jit(jax.grad(lambda d: jnp.sum(run(d)[0] * jnp.asarray(r, dtype))))(
            built.matrix.data)
        dd = sum(dense_grads(side, built.dense, reference_operand(kind, x), r)[1] for x in xs)
        assert_close(g, built.sample(dd), dtype, float(steps), what='gradient through scan')


@side_param
@pytest.mark.parametrize('kind', OPERAND_KINDS)
@format_param
@examples(3)
@given(case=cases(max_dim=MAX_DIM), mode=st.sampled_from(['closure', 'argument', 'inside']),
       ndim=ndims, spike_kind=st.sampled_from(SPIKE_KINDS), seed=seeds)
def test_jit(cls, kind, side, case, mode, ndim, spike_kind, seed):
    """jit with the matrix closed over, passed as an argument, or the operand built inside."""
    rng = np.random.default_rng(seed)
    dtype = case.data.dtype
    if kind == 'numpy' and mode == 'inside':
        mode = 'closure'  # a numpy operand cannot be built from a tracer
    with precision(dtype):
        built = Built(case, cls)
        x = spike_values(rng, operand_shape(side, case.shape, ndim, 2), spike_kind, dtype)
        operand = make_operand(kind, x)
        if mode == 'closure':  # a numpy operand stays numpy inside the traced function
            out = jax.jit(lambda: apply(side, built.matrix, operand))()
        elif mode == 'argument':
            out = jax.jit(lambda w, o: apply(side, w, o))(built.matrix, operand)
        else:
            out = jax.jit(lambda w, s: apply(side, w, make_operand(kind, s)))(built.matrix, x)
        xr = reference_operand(kind, x)
        assert out.dtype == dtype
        assert_close(out, dense_apply(side, built.dense, xr), dtype,
                     dense_apply(side, built.abs_dense, np.abs(xr)), what=f'jit {mode}')


# ---------------------------------------------------------------------------
# The product table
# ---------------------------------------------------------------------------

DENSE_NAMES = ('jax.Array', 'numpy.ndarray')
EVENT_TYPE_NAMES = ('BinaryArray', 'IndexedBinary1d', 'IndexedBinary2d')


def _public_class(name, base):
    cls = getattr(be, name, None)
    return cls if isinstance(cls, type) and issubclass(cls, base) else None


def _event_operand(cls, x):
    """An event operand of type ``cls`` from dense spikes, or None if it rejects ``x.ndim``."""
    try:
        if hasattr(cls, 'from_dense'):
            return cls.from_dense(jnp.asarray(x))
        return cls(jnp.asarray(x))
    except ValueError:
        return None


def _dense(name, x):
    return jnp.asarray(x) if name == 'jax.Array' else np.asarray(x)


def _table_operand(name, x, dtype):
    """(operand named ``name`` built from ``x``, the values the product uses) or None."""
    if name in DENSE_NAMES:
        values = np.asarray(x, dtype)
        return _dense(name, values), values.astype(np.float64)
    cls = _public_class(name, be.EventArray)
    assert cls is not None, f"the product table names an unknown operand type {name!r}"
    operand = _event_operand(cls, x)
    return None if operand is None else (operand, (np.asarray(x) != 0).astype(np.float64))


@pytest.mark.parametrize('dtype', [np.float32, np.float64], ids=['float32', 'float64'])
def test_every_registered_product_matches_dense(dtype):
    """Walk ``be.kernels()``: every registered pair, vector and matrix operands, every backend.

    A pair registered later is tested here without editing this test: formats
    are found by name in ``brainevent`` and built with ``fromcoo``; event types
    with ``from_dense`` (or their constructor).
    """
    rng = np.random.default_rng(3)
    table = be.kernels()
    assert len(table) > 0
    checked = set()
    with precision(dtype):
        # 5x6 with duplicates, an empty row (3) and empty columns (4, 5)
        case = make_case((5, 6), [0, 2, 0, 4, 1, 2, 0], [1, 3, 1, 0, 3, 1, 2],
                         [0.5, -1.5, 2.0, 1.25, -0.75, 0.25, 1.0], dtype)
        dense = case.dense.astype(np.float64)
        abs_dense = dense_of(case.shape, case.row, case.col, np.abs(case.data).astype(float))
        for row in table:
            left_fmt = _public_class(row.left, SparseMatrix)
            right_fmt = _public_class(row.right, SparseMatrix)
            if left_fmt is not None or right_fmt is not None:  # the format is the matrix
                side = 'left' if right_fmt is not None else 'right'
                weights = (right_fmt or left_fmt).fromcoo(case.coo())
            else:  # dense weights with an event operand: the dense side is the matrix
                assert (row.left in DENSE_NAMES) != (row.right in DENSE_NAMES), row
                side = 'left' if row.right in DENSE_NAMES else 'right'
                weights = _dense(row.right if side == 'left' else row.left, case.dense)
            operand_name = row.left if side == 'left' else row.right
            backends = row.backends or (None,)
            accepted = 0
            for ndim in (1, 2):
                x = spike_values(rng, operand_shape(side, case.shape, ndim, 3), 'float', dtype)
                built = _table_operand(operand_name, x, dtype)
                if built is None:
                    continue
                accepted += 1
                operand, xr = built
                a, b = (operand, weights) if side == 'left' else (weights, operand)
                expected = dense_apply(side, dense, xr)
                magnitude = dense_apply(side, abs_dense, np.abs(xr))
                for backend in backends:
                    what = f"{row.left} @ {row.right} (ndim={ndim}, backend={backend})"
                    with be.config.backend(backend) if backend else contextlib.nullcontext():
                        out = a @ b
                        via_matmul = be.matmul(a, b)
                    assert out.dtype == dtype, what
                    assert_close(out, expected, dtype, magnitude, what=what)
                    assert_close(via_matmul, expected, dtype, magnitude, what='matmul ' + what)
            assert accepted, f"no operand could be built for {row.left} @ {row.right}"
            checked.add((row.left, row.right))
    assert checked == {(r.left, r.right) for r in table}


def test_product_table_covers_every_format_operand_and_side():
    pairs = {(r.left, r.right): r for r in be.kernels()}
    operands = ('BinaryArray', 'IndexedBinary1d', 'IndexedBinary2d', 'jax.Array',
                'numpy.ndarray')
    missing = []
    for fmt in ('COO', 'CSR', 'CSC'):
        for op in operands:
            missing += [p for p in ((op, fmt), (fmt, op)) if p not in pairs]
    for event in EVENT_TYPE_NAMES:
        for dense in DENSE_NAMES:
            missing += [p for p in ((event, dense), (dense, event)) if p not in pairs]
    assert not missing, f"products missing from the table: {missing}"
    for row in pairs.values():
        assert row.kernel != '-', row
        assert len(row.backends) > 0, row


# ---------------------------------------------------------------------------
# Acceptance
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('dtype', [np.float32, np.float64], ids=['float32', 'float64'])
@pytest.mark.parametrize('shape,density', [((23, 17), 0.2), ((1, 1), 1.0), ((6, 9), 0.0),
                                           ((0, 5), 0.3)])
def test_scipy_random_csr_binary_matches_dense_under_jit_grad_vmap(shape, density, dtype):
    rng = np.random.default_rng(7)
    with precision(dtype):
        s = sp.random(*shape, density=density, format='csr', random_state=11, dtype=dtype)
        m = be.CSR(s)
        a = s.toarray().astype(np.float64)
        absa = np.abs(a)
        assert m.shape == shape and m.dtype == dtype
        num_pre, num_post = shape
        spikes_ = spike_values(rng, (num_pre,), 'float', dtype)  # graded: events are x != 0
        mask = (spikes_ != 0).astype(np.float64)
        batch = spike_values(rng, (4, num_pre), 'bool', dtype)
        bmask = batch.astype(np.float64)

        # forward under jit, the matrix closed over and passed as an argument
        expected = mask @ a
        assert_close(jax.jit(lambda x: be.BinaryArray(x) @ m)(spikes_), expected, dtype,
                     mask @ absa)
        assert_close(jax.jit(lambda w, x: x @ w)(m, be.BinaryArray(spikes_)), expected, dtype,
                     mask @ absa)

        # vmap over a batch of spikes, under jit
        out = jax.jit(jax.vmap(lambda x: be.BinaryArray(x) @ m))(jnp.asarray(batch))
        assert_close(out, bmask @ a, dtype, bmask @ absa, what='vmap')

        # grad w.r.t. the weights, under jit: the dense gradient at each stored entry
        r = rng.uniform(-1, 1, num_post)
        ct = np.cos(mask @ a) * r

        def loss(d, x):
            return jnp.sum(jnp.sin(be.BinaryArray(x) @ m.with_data(d)) * jnp.asarray(r, dtype))

        gd = jax.jit(jax.grad(loss))(m.data, jnp.asarray(spikes_))
        coo = m.tocoo()
        row, col = np.asarray(coo.row), np.asarray(coo.col)
        assert_close(gd, np.outer(mask, ct)[row, col], dtype, 1.0, what='grad w.r.t. data')

        # grad w.r.t. float (0/1) spike values, under jit: that of the dense product
        fs = jnp.asarray(mask, dtype)
        gs = jax.jit(jax.grad(loss, argnums=1))(m.data, fs)
        assert_close(gs, ct @ a.T, dtype, absa.sum(1), what='grad w.r.t. spikes')

        # per-example spike gradients over a batch: jit(vmap(grad))
        per = jax.jit(jax.vmap(jax.grad(loss, argnums=1), in_axes=(None, 0)))(
            m.data, jnp.asarray(bmask, dtype))
        assert_close(per, (np.cos(bmask @ a) * r) @ a.T, dtype, absa.sum(1),
                     what='vmap of grad w.r.t. spikes')
