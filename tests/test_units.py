"""Weights with brainunit units: products, conversions, arithmetic, reductions, jit, grad."""

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp

import brainevent as be
from strategies import FORMATS


FORMAT_IDS = [cls.format for cls in FORMATS]


def assert_close(actual, expected):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


def assert_quantity(q, unit, expected):
    """``q`` is a Quantity in ``unit`` (same dimension and scale) with value ``expected``."""
    assert isinstance(q, u.Quantity), type(q)
    assert q.unit == unit, (q.unit, unit)
    assert_close(q.to_decimal(unit), expected)


def dense_weights(shape=(6, 4), seed=0):
    rng = np.random.default_rng(seed)
    return np.where(rng.random(shape) < 0.5, rng.uniform(-1, 1, shape), 0).astype(np.float32)


def with_mv(cls, dense):
    m = cls(dense)
    return m.with_data(m.data * u.mV)


@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
def test_construct_with_quantity_data(cls):
    dense = dense_weights()
    s = sp.csr_array(dense) if cls is not be.CSC else sp.csc_array(dense)
    coo = sp.coo_array(dense)
    if cls is be.COO:
        m = be.COO((coo.data * u.mV, (coo.row, coo.col)), shape=dense.shape)
    else:
        m = cls((s.data * u.mV, s.indices, s.indptr), shape=dense.shape)
    assert m.unit == u.mV
    assert m.dtype == np.float32
    assert_quantity(m.todense(), u.mV, dense)
    assert_quantity(m.toarray(), u.mV, dense)
    from_dense = cls(jnp.asarray(dense) * u.mV)
    assert from_dense.unit == u.mV
    assert from_dense.nnz == np.count_nonzero(dense)
    assert_quantity(from_dense.todense(), u.mV, dense)
    assert_quantity(cls.fromdense(dense * u.mV).todense(), u.mV, dense)
    assert_quantity(with_mv(cls, dense).todense(), u.mV, dense)
    assert 'mV' in repr(m)


@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
def test_products_carry_units(cls):
    rng = np.random.default_rng(1)
    dense = dense_weights()
    m = with_mv(cls, dense)
    s = rng.random(6) < 0.5
    out = be.BinaryArray(s) @ m
    assert_quantity(out, u.mV, s.astype(np.float32) @ dense)
    batch = rng.random((3, 6)) < 0.5
    assert_quantity(be.BinaryArray(batch) @ m, u.mV, batch.astype(np.float32) @ dense)
    v = rng.normal(size=4).astype(np.float32)
    out = m @ (v * u.nS)
    assert_quantity(out, u.mV * u.nS, dense @ v)
    assert_quantity(out, u.pA, dense @ v)  # mV * nS is pA
    x = rng.normal(size=6).astype(np.float32)
    out = (x * u.nS) @ m
    assert_quantity(out, u.mV * u.nS, x @ dense)
    out = (jnp.asarray(x) * u.nS) @ m
    assert_quantity(out, u.mV * u.nS, x @ dense)
    # unitless operand with unit weights, unit operand with unitless weights
    assert_quantity(m @ jnp.asarray(v), u.mV, dense @ v)
    assert_quantity(cls(dense) @ (v * u.nS), u.nS, dense @ v)
    assert_quantity(m.T @ be.BinaryArray(s), u.mV, s.astype(np.float32) @ dense)


@pytest.mark.parametrize('src', FORMATS, ids=FORMAT_IDS)
def test_conversions_keep_units(src):
    dense = dense_weights()
    m = with_mv(src, dense)
    for dst in FORMATS:
        c = m.asformat(dst.format)
        assert type(c) is dst
        assert c.unit == u.mV
        assert_quantity(c.todense(), u.mV, dense)
    for c in (m.tocoo(), m.tocsr(), m.tocsc(), m.copy(), m.sort_indices(), m.sum_duplicates(),
              m.eliminate_zeros()):
        assert c.unit == u.mV
        assert_quantity(c.todense(), u.mV, dense)
    assert m.T.unit == u.mV
    assert_quantity(m.T.todense(), u.mV, dense.T)
    assert_quantity(m.transpose().todense(), u.mV, dense.T)
    a = m.astype(np.float16)
    assert a.unit == u.mV and a.dtype == np.float16
    assert_close(a.todense().to_decimal(u.mV), dense.astype(np.float16))


@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
def test_with_data_units(cls):
    dense = dense_weights()
    m = cls(dense)
    w = m.with_data(m.data * u.volt)
    assert w.unit == u.volt
    assert_quantity(w.todense(), u.volt, dense)
    assert_close(w.todense().to_decimal(u.mV), dense * 1000)
    h = m.with_data(2.0 * u.nS)
    assert h.is_homogeneous and h.unit == u.nS
    assert_quantity(h.todense(), u.nS, 2.0 * (dense != 0))
    back = w.with_data(w.data.to_decimal(u.mV))
    assert back.unit.is_unitless
    assert_close(back.todense(), dense * 1000)
    assert_close(back.to_scipy().toarray(), dense * 1000)


@pytest.mark.parametrize('cls_a', FORMATS, ids=FORMAT_IDS)
@pytest.mark.parametrize('cls_b', FORMATS, ids=FORMAT_IDS)
def test_add_and_multiply_units(cls_a, cls_b):
    a_dense, b_dense = dense_weights(seed=2), dense_weights(seed=3)
    a, b = with_mv(cls_a, a_dense), cls_b(b_dense)
    b_mv, b_ns = b.with_data(b.data * u.mV), b.with_data(b.data * u.nS)
    r = a + b_mv
    assert type(r) is cls_a
    assert_quantity(r.todense(), u.mV, a_dense + b_dense)
    assert_quantity((a - b_mv).todense(), u.mV, a_dense - b_dense)
    b_volt = b.with_data(b.data * u.volt)
    assert_quantity((a + b_volt).todense(), u.mV, a_dense + 1000 * b_dense)
    with pytest.raises(u.UnitMismatchError):
        a + b_ns
    with pytest.raises(u.UnitMismatchError):
        a - b_ns
    with pytest.raises(u.UnitMismatchError):
        a + cls_b(b_dense)  # unitless + mV
    prod = a.multiply(b_ns)
    assert type(prod) is cls_a
    assert_quantity(prod.todense(), u.mV * u.nS, a_dense * b_dense)
    assert_quantity((a * b_ns).todense(), u.mV * u.nS, a_dense * b_dense)


@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
def test_scalar_quantities_multiply_units(cls):
    dense = dense_weights()
    m = with_mv(cls, dense)
    for r in (m * (2 * u.ms), (2 * u.ms) * m, m.multiply(2 * u.ms)):
        assert type(r) is cls
        assert_quantity(r.todense(), u.mV * u.ms, 2 * dense)
    r = m / (4 * u.ms)
    assert_quantity(r.todense(), u.mV / u.ms, dense / 4)
    r = cls(dense) * (3 * u.nS)
    assert r.unit == u.nS
    assert_quantity(r.todense(), u.nS, 3 * dense)
    assert_quantity((-m).todense(), u.mV, -dense)
    assert_quantity(abs(m).todense(), u.mV, np.abs(dense))
    assert_quantity((m * 2.0).todense(), u.mV, 2 * dense)
    assert_quantity(m.multiply(jnp.asarray(dense)).todense(), u.mV, dense * dense)
    assert_quantity(m.multiply(dense * u.nS).todense(), u.mV * u.nS, dense * dense)


@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
def test_stacking_keeps_units(cls):
    a_dense, b_dense = dense_weights(seed=6), dense_weights(seed=7)
    a, b = with_mv(cls, a_dense), with_mv(cls, b_dense)
    v = be.vstack([a, b])
    assert type(v) is cls and v.unit == u.mV
    assert_quantity(v.todense(), u.mV, np.vstack([a_dense, b_dense]))
    h = be.hstack([a, b.with_data(b.data.to_decimal(u.mV) / 1000 * u.volt)], format='csr')
    assert type(h) is be.CSR
    assert_quantity(h.todense(), u.mV, np.hstack([a_dense, b_dense]))
    s = be.BinaryArray(np.arange(12) % 3 == 0)
    assert_quantity(s @ v, u.mV, (np.arange(12) % 3 == 0).astype(np.float32)
                    @ np.vstack([a_dense, b_dense]))
    with pytest.raises(u.UnitMismatchError):
        be.vstack([a, b.with_data(b.data.to_decimal(u.mV) * u.nS)])


@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
def test_reductions_keep_units(cls):
    dense = dense_weights(shape=(5, 5))
    m = with_mv(cls, dense)
    assert_quantity(m.sum(), u.mV, dense.sum())
    assert_quantity(m.sum(axis=0), u.mV, dense.sum(0))
    assert_quantity(m.sum(axis=1), u.mV, dense.sum(1))
    for k in range(-6, 7):
        assert_quantity(m.diagonal(k), u.mV, np.diagonal(dense, k))


@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
def test_to_scipy_with_units_raises(cls):
    m = with_mv(cls, dense_weights())
    with pytest.raises(TypeError, match='mV'):
        m.to_scipy()
    with pytest.raises(TypeError):
        m.T.to_scipy()


@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
@pytest.mark.parametrize('unit', [u.mV, u.nS / u.mV, u.siemens / u.meter ** 2, u.mV * u.nS],
                         ids=['mV', 'nS/mV', 'S/m2', 'mV*nS'])
def test_save_load_keeps_unit(cls, unit, tmp_path):
    dense = dense_weights()
    m = cls(dense)
    m = m.with_data(m.data * unit)
    path = tmp_path / 'q.npz'
    be.save_npz(path, m)
    back = be.load_npz(path)
    assert type(back) is cls
    assert back.unit == unit
    assert_quantity(back.todense(), unit, dense)


@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
def test_units_under_jit(cls):
    rng = np.random.default_rng(4)
    dense = dense_weights()
    m = with_mv(cls, dense)
    s = rng.random(6) < 0.5
    v = rng.normal(size=4).astype(np.float32)

    @jax.jit
    def f(mat, spikes, x):
        return (be.BinaryArray(spikes) @ mat, mat @ (x * u.nS), mat.T, mat.sum(axis=0),
                (mat * 2.0).todense(), mat.tocoo())

    out, cur, t, colsum, doubled, coo = f(m, s, v)
    assert_quantity(out, u.mV, s.astype(np.float32) @ dense)
    assert_quantity(cur, u.mV * u.nS, dense @ v)
    assert t.unit == u.mV
    assert_quantity(t.todense(), u.mV, dense.T)
    assert_quantity(colsum, u.mV, dense.sum(0))
    assert_quantity(doubled, u.mV, 2 * dense)
    assert type(coo) is be.COO and coo.unit == u.mV
    assert_quantity(coo.todense(), u.mV, dense)
    assert len(jax.tree_util.tree_leaves(m)) == 3


@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
def test_units_under_grad(cls):
    rng = np.random.default_rng(5)
    dense = dense_weights()
    m = cls(dense)
    s = (rng.random(6) < 0.5).astype(np.float32)
    v = rng.normal(size=4).astype(np.float32)

    def loss_w(w):
        out = be.BinaryArray(s) @ m.with_data(w * u.mV)
        return jnp.sum(out.to_decimal(u.mV) ** 2)

    def loss_dense(d):
        return jnp.sum((s @ d) ** 2)

    g = jax.grad(loss_w)(m.data)
    g_dense = np.asarray(jax.grad(loss_dense)(jnp.asarray(dense)))
    coo = m.tocoo()
    assert_close(g, g_dense[np.asarray(coo.row), np.asarray(coo.col)])
    assert_close(loss_w(m.data), loss_dense(dense))

    def loss_v(x):
        out = m.with_data(m.data * u.mV) @ (x * u.nS)
        return jnp.sum(out.to_decimal(u.pA))

    assert_close(jax.grad(loss_v)(jnp.asarray(v)), dense.sum(0))
    assert_close(jax.jit(jax.grad(loss_v))(jnp.asarray(v)), dense.sum(0))
