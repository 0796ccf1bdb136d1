"""Event arrays: BinaryArray and the indexed events, against numpy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import brainevent as be
from strategies import spikes


KINDS = ['bool', 'float', 'zeros', 'ones']


def as_np(x):
    return np.asarray(x)


def assert_binary(b, expected):
    """``b`` is a BinaryArray holding exactly ``expected`` (values and dtype)."""
    expected = np.asarray(expected)
    assert type(b) is be.BinaryArray
    assert b.shape == expected.shape
    assert b.dtype == expected.dtype
    np.testing.assert_array_equal(as_np(b.value), expected)


# ---------------------------------------------------------------------------
# BinaryArray
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('dtype', [np.bool_, np.float32, np.int32, np.uint8])
@pytest.mark.parametrize('shape', [(7,), (3, 5), (0,), (1, 1)])
def test_binary_array_attributes(dtype, shape):
    rng = np.random.default_rng(0)
    x = (rng.random(shape) < 0.5).astype(dtype)
    for value in (x, jnp.asarray(x)):
        b = be.BinaryArray(value)
        assert_binary(b, x)
        assert isinstance(b, be.EventArray)
        assert b.ndim == len(shape)
        assert b.size == x.size
        assert len(b) == shape[0]
        np.testing.assert_array_equal(as_np(b.todense()), x)
    # wrapping a BinaryArray keeps its values
    assert_binary(be.BinaryArray(be.BinaryArray(x)), x)


def test_binary_array_zero_dim_has_no_len():
    b = be.BinaryArray(jnp.array([1., 0., 2.]))[2]
    assert_binary(b, np.float32(2.))
    assert b.ndim == 0 and b.size == 1
    with pytest.raises(TypeError):
        len(b)


@pytest.mark.parametrize('kind', KINDS)
def test_binary_array_indexing_1d(kind):
    x = spikes(np.random.default_rng(1), (10,), kind)
    b = be.BinaryArray(x)
    for index in (slice(None, 4), slice(3, None), slice(None, None, 2), slice(None, None, -1),
                  slice(2, 8, 3), np.array([0, 3, 3, 9]), x.astype(bool), 4, -1):
        assert_binary(b[index], x[index])


@pytest.mark.parametrize('kind', KINDS)
def test_binary_array_indexing_2d(kind):
    x = spikes(np.random.default_rng(2), (4, 6), kind)
    b = be.BinaryArray(x)
    for index in (0, -1, slice(1, 3), (slice(None), slice(2, 5)), (1, slice(None)),
                  (slice(None), 3), (np.array([0, 2]), slice(None)), (2, 4),
                  (slice(None, None, 2), slice(None, None, -1))):
        assert_binary(b[index], x[index])


@pytest.mark.parametrize('kind', ['bool', 'float'])
def test_binary_array_transpose_reshape_astype(kind):
    x = spikes(np.random.default_rng(3), (4, 6), kind)
    b = be.BinaryArray(x)
    assert_binary(b.T, x.T)
    assert_binary(b.transpose(), x.transpose())
    assert_binary(b.transpose(1, 0), x.transpose(1, 0))
    assert_binary(b.transpose((1, 0)), x.transpose((1, 0)))
    assert_binary(b.reshape(-1), x.reshape(-1))
    assert_binary(b.reshape(6, 4), x.reshape(6, 4))
    assert_binary(b.reshape((2, 12)), x.reshape((2, 12)))
    assert_binary(b.reshape(-1).reshape(4, 6), x)
    for dtype in (np.float32, np.bool_, np.int32, np.float16):
        assert_binary(b.astype(dtype), x.astype(dtype))
    one = be.BinaryArray(x[0])
    assert_binary(one.T, x[0])
    assert_binary(one.reshape(2, 3), x[0].reshape(2, 3))


@pytest.mark.parametrize('kind', ['bool', 'float'])
def test_concatenate_and_stack_keep_type(kind):
    rng = np.random.default_rng(4)
    a, c = spikes(rng, (3,), kind), spikes(rng, (5,), kind)
    assert_binary(be.concatenate([be.BinaryArray(a), be.BinaryArray(c)]), np.concatenate([a, c]))
    assert_binary(be.concatenate((be.BinaryArray(a),)), a)
    assert_binary(be.stack([be.BinaryArray(a), be.BinaryArray(a[::-1])]), np.stack([a, a[::-1]]))
    assert_binary(be.stack([be.BinaryArray(a), be.BinaryArray(a)], axis=1),
                  np.stack([a, a], axis=1))
    x, y = spikes(rng, (2, 4), kind), spikes(rng, (2, 3), kind)
    assert_binary(be.concatenate([be.BinaryArray(x), be.BinaryArray(y)], axis=1),
                  np.concatenate([x, y], axis=1))
    assert_binary(be.concatenate([be.BinaryArray(x), be.BinaryArray(x)]),
                  np.concatenate([x, x]))
    assert_binary(be.stack([be.BinaryArray(x), be.BinaryArray(x)], axis=-1),
                  np.stack([x, x], axis=-1))


@pytest.mark.parametrize('kind', ['bool', 'float'])
def test_binary_array_pytree(kind):
    x = spikes(np.random.default_rng(5), (3, 4), kind)
    b = be.BinaryArray(x)
    leaves, treedef = jax.tree_util.tree_flatten(b)
    assert len(leaves) == 1 and leaves[0] is b.value
    assert_binary(jax.tree_util.tree_unflatten(treedef, leaves), x)
    assert_binary(jax.jit(lambda s: s)(b), x)
    assert_binary(jax.jit(lambda s: s[1:])(b), x[1:])
    assert_binary(jax.jit(lambda s: s.T)(b), x.T)
    assert_binary(jax.jit(lambda: be.BinaryArray(jnp.asarray(x)))(), x)
    # vmap over the batch axis: each row is a 1-D BinaryArray inside
    out = jax.vmap(lambda s: (s.ndim, s.value.sum(), s))(b)
    np.testing.assert_array_equal(out[1], x.sum(axis=1))
    assert_binary(out[2], x)
    out = jax.vmap(lambda s: s.T, in_axes=1, out_axes=0)(b)
    assert_binary(out, x.T)


@pytest.mark.parametrize('kind', ['bool', 'float'])
def test_vmap_product_over_binary_array(kind):
    rng = np.random.default_rng(6)
    x = spikes(rng, (5, 6), kind)
    w = rng.normal(size=(6, 3)).astype(np.float32)
    csr = be.CSR(np.where(rng.random((6, 3)) < 0.5, w, 0).astype(np.float32))
    expected = (x != 0).astype(np.float32) @ np.asarray(csr.todense())
    out = jax.vmap(lambda s: s @ csr)(be.BinaryArray(x))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    out = jax.vmap(lambda s: s @ jnp.asarray(w))(be.BinaryArray(x))
    np.testing.assert_allclose(out, (x != 0).astype(np.float32) @ w, rtol=1e-5, atol=1e-5)


@given(n_exc=st.sampled_from([1, 5]), n_inh=st.sampled_from([0, 3]),
       batch=st.sampled_from([None, 3]),
       seed=st.integers(0, 2 ** 31))
@settings(max_examples=6)
def test_sliced_spikes_make_event_products(n_exc, n_inh, batch, seed):
    rng = np.random.default_rng(seed)
    n = n_exc + n_inh
    shape = (n,) if batch is None else (batch, n)
    # non-binary spike values: an event product uses (value != 0), a float one the values
    value = np.where(rng.random(shape) < 0.5, rng.uniform(0.2, 3.0, shape), 0).astype(np.float32)
    w_dense = np.where(rng.random((n_exc, 4)) < 0.6, rng.uniform(-1, 1, (n_exc, 4)), 0)
    w_dense = w_dense.astype(np.float32)
    s = be.BinaryArray(value)
    exc = s[:n_exc] if batch is None else s[:, :n_exc]
    assert type(exc) is be.BinaryArray
    mask = (as_np(exc.value) != 0).astype(np.float32)
    expected = mask @ w_dense
    for w in (be.CSR(w_dense), be.CSC(w_dense), be.COO(w_dense), jnp.asarray(w_dense)):
        out = exc @ w
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
        out = jax.jit(lambda sp, m: sp[..., :n_exc] @ m)(s, w)
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------
# IndexedBinary1d / IndexedBinary2d
# ---------------------------------------------------------------------------

def check_indexed_1d(ev, x, capacity=None):
    nz = np.flatnonzero(x)
    capacity = x.shape[0] if capacity is None else capacity
    assert type(ev) is be.IndexedBinary1d
    assert ev.shape == x.shape
    assert ev.max_events == capacity
    assert ev.indices.shape == (capacity,)
    assert ev.indices.dtype == jnp.int32
    assert int(ev.count) == nz.size
    np.testing.assert_array_equal(as_np(ev.indices)[:nz.size], nz)  # ascending
    np.testing.assert_array_equal(as_np(ev.todense()), x != 0)
    assert ev.todense().dtype == jnp.bool_
    binary = ev.to_binary()
    assert_binary(binary, x != 0)


def check_indexed_2d(ev, x, capacity=None):
    capacity = x.shape[1] if capacity is None else capacity
    assert type(ev) is be.IndexedBinary2d
    assert ev.shape == x.shape
    assert ev.max_events == capacity
    assert ev.indices.shape == (x.shape[0], capacity)
    np.testing.assert_array_equal(as_np(ev.count), np.count_nonzero(x, axis=1))
    indices = as_np(ev.indices)
    for i in range(x.shape[0]):
        nz = np.flatnonzero(x[i])
        np.testing.assert_array_equal(indices[i, :nz.size], nz)
    np.testing.assert_array_equal(as_np(ev.todense()), x != 0)
    assert_binary(ev.to_binary(), x != 0)


@given(n=st.sampled_from([0, 1, 7, 12]), kind=st.sampled_from(KINDS), seed=st.integers(0, 2 ** 31))
@settings(max_examples=8)
def test_indexed_1d_from_dense(n, kind, seed):
    x = spikes(np.random.default_rng(seed), (n,), kind)
    check_indexed_1d(be.IndexedBinary1d.from_dense(x), x)
    check_indexed_1d(be.IndexedBinary1d.from_dense(jnp.asarray(x)), x)
    check_indexed_1d(jax.jit(be.IndexedBinary1d.from_dense)(x), x)
    check_indexed_1d(be.IndexedBinary1d.from_dense(be.BinaryArray(x)), x)
    # a smaller buffer that still holds every event
    k = int(np.count_nonzero(x))
    check_indexed_1d(be.IndexedBinary1d.from_dense(x, max_events=k), x, k)
    check_indexed_1d(jax.jit(lambda v: be.IndexedBinary1d.from_dense(v, max_events=k))(x), x, k)


@given(batch=st.sampled_from([0, 1, 3]), n=st.sampled_from([1, 6]), kind=st.sampled_from(KINDS),
       seed=st.integers(0, 2 ** 31))
@settings(max_examples=6)
def test_indexed_2d_from_dense(batch, n, kind, seed):
    x = spikes(np.random.default_rng(seed), (batch, n), kind)
    check_indexed_2d(be.IndexedBinary2d.from_dense(x), x)
    check_indexed_2d(jax.jit(be.IndexedBinary2d.from_dense)(jnp.asarray(x)), x)
    k = int(np.count_nonzero(x, axis=1).max(initial=0))
    check_indexed_2d(be.IndexedBinary2d.from_dense(x, max_events=k), x, k)
    check_indexed_2d(jax.jit(lambda v: be.IndexedBinary2d.from_dense(v, max_events=k))(x), x, k)


@pytest.mark.parametrize('cls, shape', [(be.IndexedBinary1d, (6,)),
                                        (be.IndexedBinary2d, (3, 6))])
def test_indexed_all_zero_and_all_one(cls, shape):
    check = check_indexed_1d if cls is be.IndexedBinary1d else check_indexed_2d
    zeros, ones = np.zeros(shape, np.float32), np.ones(shape, bool)
    check(cls.from_dense(zeros), zeros)
    check(cls.from_dense(ones), ones)
    check(cls.from_dense(zeros, max_events=0), zeros, 0)
    check(jax.jit(cls.from_dense)(ones), ones)
    ev = cls.from_dense(ones)
    np.testing.assert_array_equal(ev.indices, np.broadcast_to(np.arange(6), ev.indices.shape))


def test_indexed_overflow():
    x = np.array([1., 0., 1., 1., 0., 1.], np.float32)
    with pytest.raises(ValueError, match='max_events'):
        be.IndexedBinary1d.from_dense(x, max_events=3)
    with pytest.raises(ValueError, match='max_events'):
        be.IndexedBinary2d.from_dense(np.stack([x, np.zeros(6, np.float32)]), max_events=2)
    # inside jit the events past the buffer are dropped
    ev = jax.jit(lambda v: be.IndexedBinary1d.from_dense(v, max_events=3))(x)
    assert int(ev.count) == 3
    np.testing.assert_array_equal(ev.indices, [0, 2, 3])
    np.testing.assert_array_equal(ev.todense(), [1, 0, 1, 1, 0, 0])
    ev = jax.jit(lambda v: be.IndexedBinary2d.from_dense(v, max_events=2))(np.stack([x, x[::-1]]))
    np.testing.assert_array_equal(ev.count, [2, 2])
    np.testing.assert_array_equal(ev.indices, [[0, 2], [0, 2]])


def test_indexed_pytree_round_trip():
    x1 = np.array([0, 1, 0, 0, 1], np.int32)
    x2 = np.array([[1, 0, 0, 1, 1], [0, 0, 0, 0, 0]], np.int32)
    for ev, x, check in ((be.IndexedBinary1d.from_dense(x1, max_events=3), x1, check_indexed_1d),
                         (be.IndexedBinary2d.from_dense(x2, max_events=4), x2, check_indexed_2d)):
        leaves, treedef = jax.tree_util.tree_flatten(ev)
        assert len(leaves) == 2
        assert leaves[0] is ev.indices and leaves[1] is ev.count
        back = jax.tree_util.tree_unflatten(treedef, leaves)
        check(back, x, ev.max_events)
        out = jax.jit(lambda e: e)(ev)
        check(out, x, ev.max_events)
        np.testing.assert_array_equal(out.indices, ev.indices)
        dense = jax.jit(lambda e: e.todense())(ev)
        np.testing.assert_array_equal(dense, x != 0)


def test_indexed_nonbinary_values():
    # any nonzero value is an event, negative ones included
    x = np.array([-1.5, 0., 2.5, 0., 0.25, -0.], np.float32)
    check_indexed_1d(be.IndexedBinary1d.from_dense(x), x)
    check_indexed_1d(jax.jit(be.IndexedBinary1d.from_dense)(x), x)
    x2 = np.array([[0, -3, 7], [2, 0, 0]], np.int32)
    check_indexed_2d(be.IndexedBinary2d.from_dense(x2), x2)
    check_indexed_2d(be.IndexedBinary2d.from_dense(be.BinaryArray(x2)), x2)


def test_indexed_constructor_from_fields():
    ev = be.IndexedBinary1d(jnp.array([4, 1, 0, 0], jnp.int32), 2, (6,))
    np.testing.assert_array_equal(ev.todense(), [0, 1, 0, 0, 1, 0])
    assert ev.max_events == 4
    ev = be.IndexedBinary2d(jnp.array([[2, 9], [0, 1]], jnp.int32), jnp.array([1, 2]), (2, 3))
    np.testing.assert_array_equal(ev.todense(), [[0, 0, 1], [1, 1, 0]])


def test_indexed_zero_row_batch():
    x = np.zeros((0, 5), np.float32)
    for ev in (be.IndexedBinary2d.from_dense(x), jax.jit(be.IndexedBinary2d.from_dense)(x),
               be.IndexedBinary2d.from_dense(x, max_events=2)):
        assert ev.shape == (0, 5)
        assert ev.count.shape == (0,)
        assert ev.indices.shape[0] == 0
        assert ev.todense().shape == (0, 5)
        assert_binary(ev.to_binary(), np.zeros((0, 5), bool))
