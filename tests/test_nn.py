"""brainevent.nn: the layers against numpy dense references.

The contract tested here:

* Forward: ``layer(x)`` equals ``x @ W`` for every layer and input (a
  ``BinaryArray`` counts its nonzero entries as spikes: ``(x != 0) @ W``),
  for 1-D, batched and 3-D input, bool, float 0/1, graded floats,
  ``BinaryArray``, all-zero and all-one spikes, and ``n_pre`` or ``n_post`` of
  1, on every CPU backend; ``W`` is ``layer.todense()`` or the weights given.
* Transforms: ``jax.jit`` (two equal layers share one trace), ``jax.vmap`` over
  a batch axis and over weights, ``lax.scan`` over time steps.
* Gradients: with respect to ``layer.weight`` through ``with_weight`` (dense
  weights, CSR per-synapse weights, JITC scalar and normal parameters, fixed
  degree per-synapse and shared weights) equal the dense computation's
  gradient, gathered at the stored entries; with respect to the input, the
  dense gradient ``W @ g`` (surrogate gradients flow).
* Connectivity: CSR and JITC storages hold the same matrix for the same seed
  (it is ``JITC...R(...).tocsr()``); every neuron of the fixed side has exactly
  ``conn_num`` distinct partners; no self-connections when asked.
* Units, aliases (``conn_num=0.2, conn_weight=0.5``), ``repr``, and errors
  that name the layer, the argument, the expected and the received value.
"""

import re

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import brainevent as be
from brainevent import nn

F32 = np.float32


def spikes(shape, rate=0.3, seed=0):
    return np.random.default_rng(seed).random(shape) < rate


def dense(layer):
    return np.asarray(u.get_mantissa(layer.todense()), np.float64)


def reference(layer, x):
    """The numpy result of ``layer(x)``: ``x @ W``; a ``BinaryArray`` is ``(x != 0) @ W``."""
    x = np.asarray(x.value) != 0 if isinstance(x, be.BinaryArray) else np.asarray(x)
    return x.astype(np.float64) @ dense(layer)


# Each factory takes (n_pre, n_post) and gives a layer of that shape.
LAYERS = {
    'linear': lambda m, n: nn.EventLinear(
        m, n, weight=np.random.default_rng(m * 31 + n).normal(size=(m, n)).astype(F32)),
    'prob_csr': lambda m, n: nn.EventFixedProb(m, n, prob=0.4, weight=0.5, seed=1),
    'prob_jitc': lambda m, n: nn.EventFixedProb(m, n, prob=0.4, weight=0.5, seed=1,
                                                trainable=False),
    'prob_normal_jitc': lambda m, n: nn.EventFixedProb(m, n, prob=0.4, weight=nn.Normal(0.5, 0.2),
                                                       seed=2, storage='jitc'),
    'prob_uniform_csr': lambda m, n: nn.EventFixedProb(m, n, prob=0.4,
                                                       weight=nn.Uniform(-1.0, 1.0), seed=3),
    'event_fixed_post': lambda m, n: nn.EventFixedNumConn(m, n, conn_num=min(3, n), seed=2,
                                                          weight=nn.Normal(0.0, 1.0)),
    'event_fixed_pre': lambda m, n: nn.EventFixedNumConn(m, n, conn_num=min(3, m), seed=2,
                                                         fixed='pre', trainable=False),
    'fixed_post': lambda m, n: nn.FixedNumConn(m, n, conn_num=min(2, n), seed=4,
                                               weight=nn.Uniform(0.0, 1.0)),
    'fixed_pre': lambda m, n: nn.FixedNumConn(m, n, conn_num=min(2, m), fixed='pre', seed=5),
}
layer_param = pytest.mark.parametrize('kind', list(LAYERS))
SHAPE = (12, 9)  # one shape for most tests: generation and products compile once per layer
BIG = (60, 45)  # the tests of statistics


def inputs(n_pre):
    """Every input form of one step and of a batch."""
    one = spikes(n_pre, seed=1)
    batch = spikes((3, n_pre), seed=2)
    graded = np.random.default_rng(3).normal(size=(3, n_pre)).astype(F32) * (batch | one)
    return {
        'bool': one, 'float01': one.astype(F32), 'binary': be.BinaryArray(one),
        'zeros': np.zeros(n_pre, bool), 'ones': np.ones(n_pre, F32),
        'batch_bool': batch, 'batch_float01': batch.astype(F32),
        'batch_binary': be.BinaryArray(batch), 'graded': graded,
        'steps_batch': spikes((1, 3, n_pre), seed=4).astype(F32),  # flattens to (3, n_pre)
    }


# ---------------------------------------------------------------------------
# Forward
# ---------------------------------------------------------------------------

@layer_param
def test_forward_every_input_form(kind, backend):
    layer = LAYERS[kind](*SHAPE)
    assert (layer.n_pre, layer.n_post) == SHAPE
    for name, x in inputs(SHAPE[0]).items():
        out = layer(x)
        lead = x.shape[:-1]
        assert out.shape == (*lead, SHAPE[1]), name
        np.testing.assert_allclose(np.asarray(out), reference(layer, x), rtol=1e-5, atol=1e-5,
                                   err_msg=f'{kind}, {name} input')


@pytest.mark.parametrize('kind', ['linear', 'prob_csr', 'prob_jitc', 'event_fixed_post',
                                  'fixed_pre'])
@pytest.mark.parametrize('shape', [(1, 5), (5, 1), (1, 1)], ids=str)
def test_forward_single_neuron_sides(kind, shape):
    layer = LAYERS[kind](*shape)
    for x in (np.ones(shape[0], bool), spikes((4, shape[0]), 0.5, seed=5).astype(F32)):
        np.testing.assert_allclose(np.asarray(layer(x)), reference(layer, x), rtol=1e-5,
                                   atol=1e-6)


def test_float_input_is_graded_and_binary_arrays_are_spikes_in_every_layer():
    x = np.array([0.5, 0.0, -2.0, 0.0, 3.0, 0.0] * 2, F32)
    event = nn.EventFixedNumConn(*SHAPE, conn_num=2, weight=1.5, seed=0)
    graded = nn.FixedNumConn(*SHAPE, conn_num=2, weight=1.5, seed=0)
    w = dense(graded)
    np.testing.assert_array_equal(dense(event), w)  # the same connectivity
    linear = nn.EventLinear(*SHAPE, weight=w)
    prob = nn.EventFixedProb(*SHAPE, prob=0.5, weight=1.5, seed=0)
    for layer in (event, graded, linear, prob):
        np.testing.assert_allclose(np.asarray(layer(x)), x @ dense(layer), rtol=1e-6,
                                   err_msg=repr(layer))
        np.testing.assert_allclose(np.asarray(layer(be.BinaryArray(x))), (x != 0) @ dense(layer),
                                   rtol=1e-6, err_msg=repr(layer))
    np.testing.assert_allclose(np.asarray(graded(x != 0)), np.asarray(event(x != 0)), rtol=1e-6)


def test_event_linear_matches_spikes_at_weights():
    w = np.random.default_rng(0).normal(size=(40, 30)).astype(F32)
    layer = nn.EventLinear(40, 30, weight=w)
    s = spikes((5, 40), seed=9)
    np.testing.assert_allclose(np.asarray(layer(s)), s.astype(F32) @ w, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(layer.todense()), w)
    scalar = nn.EventLinear(4, 3, weight=2)  # a scalar broadcasts; an int computes in float
    np.testing.assert_array_equal(np.asarray(scalar.weight), np.full((4, 3), 2.0, F32))
    assert scalar.weight.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(scalar(np.array([1, 0, 1, 1], bool))), [6.0] * 3)


@settings(max_examples=5)
@given(n_pre=st.integers(1, 30), n_post=st.integers(1, 30), prob=st.floats(0.0, 1.0),
       seed=st.integers(0, 2 ** 32 - 1), rate=st.floats(0.0, 1.0))
def test_fixed_prob_property(n_pre, n_post, prob, seed, rate):
    csr = nn.EventFixedProb(n_pre, n_post, prob=prob, weight=0.25, seed=seed)
    jitc = nn.EventFixedProb(n_pre, n_post, prob=prob, weight=0.25, seed=seed, storage='jitc')
    expected = be.JITCScalarR(n_pre, n_post, prob, 0.25, seed=seed).todense()
    np.testing.assert_array_equal(dense(csr), np.asarray(expected))
    np.testing.assert_array_equal(dense(jitc), np.asarray(expected))
    x = spikes((2, n_pre), rate, seed=seed % 1000)
    for layer in (csr, jitc):
        np.testing.assert_allclose(np.asarray(layer(x)), reference(layer, x), atol=1e-5)


@settings(max_examples=5)
@given(n_pre=st.integers(1, 30), n_post=st.integers(1, 30), data=st.data(),
       fixed=st.sampled_from(['post', 'pre']), seed=st.integers(0, 1000))
def test_fixed_num_property(n_pre, n_post, data, fixed, seed):
    side = n_post if fixed == 'post' else n_pre
    k = data.draw(st.integers(1, side), label='conn_num')
    layer = nn.EventFixedNumConn(n_pre, n_post, conn_num=k, weight=1.0, seed=seed, fixed=fixed)
    counts = (dense(layer) != 0).sum(axis=1 if fixed == 'post' else 0)
    np.testing.assert_array_equal(counts, np.full(n_pre if fixed == 'post' else n_post, k))
    x = spikes((2, n_pre), 0.5, seed=seed)
    np.testing.assert_allclose(np.asarray(layer(x)), reference(layer, x), atol=1e-5)


# ---------------------------------------------------------------------------
# Connectivity
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('weight', [0.5, nn.Normal(0.3, 0.1), nn.Uniform(0.1, 0.9)], ids=repr)
def test_csr_and_jitc_storage_hold_the_same_connectivity(weight):
    csr = nn.EventFixedProb(*SHAPE, prob=0.3, weight=weight, seed=7)
    jitc = nn.EventFixedProb(*SHAPE, prob=0.3, weight=weight, seed=7, storage='jitc')
    assert (csr.storage, jitc.storage) == ('csr', 'jitc')
    assert isinstance(csr.conn, be.CSR) and isinstance(jitc.conn, be.JITCMatrix)
    np.testing.assert_allclose(dense(csr), dense(jitc), rtol=1e-6)
    assert csr.weight.shape == (csr.conn.nnz,) and 0 < csr.conn.nnz < 12 * 9
    assert csr.conn.nnz == jitc.conn.nnz
    other = nn.EventFixedProb(*SHAPE, prob=0.3, weight=weight, seed=8)
    assert not np.array_equal(dense(other) != 0, dense(csr) != 0)


def test_default_storage_follows_trainable():
    assert nn.EventFixedProb(12, 12).storage == 'csr'
    assert nn.EventFixedProb(12, 12, trainable=True).storage == 'csr'
    assert nn.EventFixedProb(12, 12, trainable=False).storage == 'jitc'
    assert nn.EventFixedProb(12, 12, weight=nn.Normal(1.0, 0.5), trainable=False).storage == 'jitc'
    assert nn.EventFixedProb(12, 12, storage='jitc').storage == 'jitc'
    no_self = nn.EventFixedProb(12, 12, trainable=False, allow_self_connections=False)
    assert no_self.storage == 'csr' and no_self.weight.shape == (1,)  # one weight, stored once
    shared = nn.EventFixedProb(12, 12, prob=0.5, weight=0.5, storage='csr', trainable=False)
    assert shared.weight.shape == (1,) and float(shared.weight[0]) == 0.5
    np.testing.assert_array_equal(dense(shared), dense(nn.EventFixedProb(12, 12, prob=0.5)))


def test_fixed_prob_defaults_and_probability_extremes():
    layer = nn.EventFixedProb(*BIG, seed=3)  # prob 0.2, weight 0.5
    d = dense(layer)
    assert set(np.unique(d)) <= {0.0, 0.5}
    assert abs((d != 0).mean() - 0.2) < 0.03  # 4 standard deviations
    assert not nn.EventFixedProb(*SHAPE, prob=0.0).todense().any()
    np.testing.assert_array_equal(dense(nn.EventFixedProb(*SHAPE, prob=1.0, weight=2.0)),
                                  np.full(SHAPE, 2.0))


@pytest.mark.parametrize('kind', ['prob', 'fixed'])
def test_no_self_connections(kind):
    if kind == 'prob':
        layer = nn.EventFixedProb(12, 12, prob=0.5, seed=1, allow_self_connections=False)
        full = dense(nn.EventFixedProb(12, 12, prob=0.5, seed=1))
        np.fill_diagonal(full, 0.0)
        np.testing.assert_array_equal(dense(layer), full)  # the same draw, diagonal left out
        assert layer.weight.shape == (int((full != 0).sum()),)
    else:
        layer = nn.FixedNumConn(12, 12, conn_num=11, seed=1, allow_self_connections=False)
        assert ((dense(layer) != 0).sum(axis=1) == 11).all()
    assert not np.diag(dense(layer)).any()
    x = spikes(12, 0.5, seed=3)
    np.testing.assert_allclose(np.asarray(layer(x)), reference(layer, x), atol=1e-5)


def test_fixed_num_exact_counts_and_sides():
    post = nn.FixedNumConn(*BIG, conn_num=7, seed=3)
    pre = nn.FixedNumConn(*BIG, conn_num=7, seed=3, fixed='pre')
    assert (post.fixed, pre.fixed, post.conn_num, pre.conn_num) == ('post', 'pre', 7, 7)
    assert isinstance(post.conn, be.FixedPostNumConn) and isinstance(pre.conn, be.FixedPreNumConn)
    np.testing.assert_array_equal((dense(post) != 0).sum(axis=1), np.full(BIG[0], 7))
    np.testing.assert_array_equal((dense(pre) != 0).sum(axis=0), np.full(BIG[1], 7))
    rows = np.asarray(post.conn.indices)
    assert rows.shape == (BIG[0], 7) and (np.diff(rows, axis=1) > 0).all()  # distinct targets
    assert post.weight.shape == (BIG[0], 7) and pre.weight.shape == (BIG[1], 7)
    np.testing.assert_array_equal(np.asarray(post.weight), np.full((BIG[0], 7), 0.5, F32))
    shared = nn.FixedNumConn(*BIG, conn_num=7, seed=3, trainable=False)
    assert shared.weight.shape == (1,)
    np.testing.assert_array_equal(dense(shared), dense(post))
    with_repeats = nn.FixedNumConn(*SHAPE, conn_num=14, weight=1.0, seed=0, replace=True)
    np.testing.assert_allclose(dense(with_repeats).sum(axis=1), np.full(SHAPE[0], 14.0))


def test_weight_arrays_and_distributions_for_fixed_num():
    w = np.arange(36, dtype=F32).reshape(12, 3) + 1
    layer = nn.FixedNumConn(*SHAPE, conn_num=3, weight=w, seed=2)
    np.testing.assert_array_equal(np.asarray(layer.weight), w)
    d = dense(layer)
    idx = np.asarray(layer.conn.indices)
    np.testing.assert_array_equal(d[np.arange(12)[:, None], idx], w)
    drawn = nn.EventFixedNumConn(*BIG, conn_num=20, weight=nn.Normal(1.0, 0.5), seed=1)
    values = np.asarray(drawn.weight)
    assert abs(values.mean() - 1.0) < 0.06 and abs(values.std() - 0.5) < 0.06
    again = nn.EventFixedNumConn(*BIG, conn_num=20, weight=nn.Normal(1.0, 0.5), seed=1)
    np.testing.assert_array_equal(np.asarray(again.weight), values)


# ---------------------------------------------------------------------------
# Transforms
# ---------------------------------------------------------------------------

@layer_param
def test_jit_vmap_scan(kind):
    layer = LAYERS[kind](*SHAPE)
    xs = spikes((5, SHAPE[0]), 0.4, seed=6).astype(F32)
    ref = reference(layer, xs)

    out = jax.jit(lambda lay, x: lay(x))(layer, xs)
    np.testing.assert_allclose(np.asarray(out), ref, atol=1e-5)
    np.testing.assert_allclose(np.asarray(jax.vmap(layer)(xs)), ref, atol=1e-5)
    np.testing.assert_allclose(np.asarray(jax.vmap(lambda x: layer(x != 0))(xs)), ref, atol=1e-5)

    def step(total, x):
        y = layer(x)
        return total + y, y
    total, per_step = jax.lax.scan(step, jnp.zeros(SHAPE[1]), xs)
    np.testing.assert_allclose(np.asarray(per_step), ref, atol=1e-5)
    np.testing.assert_allclose(np.asarray(total), ref.sum(0), atol=1e-4)


def test_equal_layers_share_one_trace():
    traces = []

    @jax.jit
    def run(layer, x):
        traces.append(1)
        return layer(x)

    x = spikes(SHAPE[0], seed=1)
    a = run(nn.EventFixedProb(*SHAPE, prob=0.3, seed=4), x)
    b = run(nn.EventFixedProb(*SHAPE, prob=0.3, seed=4), x)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert len(traces) == 1
    leaves = jax.tree_util.tree_leaves(nn.EventFixedProb(*SHAPE, prob=0.3, seed=4))
    assert len(leaves) == 3  # data, indices, indptr


def test_vmap_over_weights():
    layer = nn.EventFixedProb(*SHAPE, prob=0.5, seed=2)
    ws = jnp.stack([layer.weight * k for k in (1.0, 2.0, -1.0)])
    x = spikes(SHAPE[0], 0.5, seed=2)
    out = jax.vmap(lambda w: layer.with_weight(w)(x))(ws)
    ref = reference(layer, x)
    np.testing.assert_allclose(np.asarray(out), np.stack([ref, 2 * ref, -ref]), atol=1e-5)


# ---------------------------------------------------------------------------
# Gradients
# ---------------------------------------------------------------------------

def dense_weight_grad(layer, x, target):
    """The gradient of ``sum((x @ W - target)**2)`` with respect to the dense ``W``."""
    w = jnp.asarray(dense(layer), jnp.float32)
    xf = jnp.asarray(x, jnp.float32)
    return np.asarray(jax.grad(lambda w_: jnp.sum((xf @ w_ - target) ** 2))(w))


def layer_weight_grad(layer, x, target):
    def loss(w):
        return jnp.sum((layer.with_weight(w)(x) - target) ** 2)
    return np.asarray(jax.jit(jax.grad(loss))(layer.weight))


def entry_grads(layer, g):
    """``g`` (dense) at the stored entries, in the order of ``layer.weight``."""
    conn = layer.conn
    if isinstance(conn, be.CSR):
        indptr = np.asarray(conn.indptr)
        rows = np.repeat(np.arange(conn.shape[0]), np.diff(indptr))
        return g[rows, np.asarray(conn.indices)]
    idx = np.asarray(conn.indices)
    k = np.arange(idx.shape[0])[:, None]
    return g[k, idx] if isinstance(conn, be.FixedPostNumConn) else g[idx, k]


@pytest.mark.parametrize('kind', ['linear', 'prob_csr', 'prob_uniform_csr', 'event_fixed_post',
                                  'fixed_pre'])
def test_grad_per_synapse_weights(kind, backend):
    layer = LAYERS[kind](*SHAPE)
    x = spikes((4, 12), 0.5, seed=8)
    if not layer.event:
        x = np.random.default_rng(8).normal(size=(4, 12)).astype(F32)  # graded input
    target = jnp.asarray(np.random.default_rng(9).normal(size=(4, 9)), jnp.float32)
    g_dense = dense_weight_grad(layer, x, target)
    g = layer_weight_grad(layer, x, target)
    assert g.shape == layer.weight.shape
    expected = g_dense if kind == 'linear' else entry_grads(layer, g_dense)
    np.testing.assert_allclose(g, expected, rtol=1e-4, atol=1e-4)
    assert np.abs(g).sum() > 0


@pytest.mark.parametrize('kind', ['prob_jitc', 'event_fixed_pre'])
def test_grad_shared_weight(kind, backend):
    layer = LAYERS[kind](*SHAPE)  # one weight for every synapse
    assert layer.weight.shape == (1,)
    x = spikes((4, 12), 0.5, seed=10)
    target = jnp.ones((4, 9))
    mask = dense(layer) != 0
    expected = (dense_weight_grad(layer, x, target) * mask).sum()
    np.testing.assert_allclose(layer_weight_grad(layer, x, target), [expected], rtol=1e-4)


def test_grad_jitc_normal_parameters(backend):
    layer = LAYERS['prob_normal_jitc'](12, 9)
    mean, std = (float(v) for v in np.asarray(layer.weight))
    assert (mean, std) == pytest.approx((0.5, 0.2))
    x = spikes((4, 12), 0.5, seed=11)
    target = jnp.zeros((4, 9))
    d = dense(layer)
    mask = d != 0
    z = np.where(mask, (d - mean) / std, 0.0)  # each entry is mean + std * z
    g_dense = dense_weight_grad(layer, x, target)
    expected = [(g_dense * mask).sum(), (g_dense * z).sum()]
    np.testing.assert_allclose(layer_weight_grad(layer, x, target), expected, rtol=1e-3)


@layer_param
def test_grad_with_respect_to_input(kind):
    layer = LAYERS[kind](*SHAPE)
    x = spikes((3, SHAPE[0]), 0.5, seed=12).astype(F32)  # 0/1 spikes as floats (surrogate training)
    upstream = jnp.asarray(np.random.default_rng(12).normal(size=(3, SHAPE[1])), jnp.float32)
    g = jax.grad(lambda x_: jnp.sum(layer(x_) * upstream))(jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(g), np.asarray(upstream) @ dense(layer).T, rtol=1e-4,
                               atol=1e-5)
    g_binary = jax.grad(lambda x_: jnp.sum(layer(be.BinaryArray(x_)) * upstream))(jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(g_binary), np.asarray(g), rtol=1e-5, atol=1e-6)


def test_sgd_step_lowers_the_loss():
    layer = nn.EventFixedProb(*SHAPE, prob=0.3, seed=0)
    x = spikes((8, SHAPE[0]), 0.3, seed=1)
    target = layer.with_weight(2.0 * layer.weight)(x)  # reachable: twice the weights

    def loss(w):
        return jnp.sum((layer.with_weight(w)(x) - target) ** 2)

    w = layer.weight
    before = float(loss(w))
    grad = jax.jit(jax.grad(loss))
    for _ in range(5):
        w = w - 0.02 * grad(w)
    assert float(loss(w)) < 0.5 * before


# ---------------------------------------------------------------------------
# Units
# ---------------------------------------------------------------------------

def test_units():
    x = spikes((3, 12), 0.5, seed=13)
    for layer in (nn.EventLinear(12, 9, weight=0.5 * u.nS),
                  nn.EventFixedProb(12, 9, prob=0.5, weight=0.5 * u.nS, seed=1),
                  nn.EventFixedProb(12, 9, prob=0.5, weight=0.5 * u.nS, seed=1, storage='jitc'),
                  nn.EventFixedProb(12, 9, prob=0.5,
                                    weight=nn.Normal(0.5 * u.nS, 100 * u.psiemens)),
                  nn.EventFixedNumConn(12, 9, conn_num=2, weight=0.5 * u.nS)):
        out = layer(x)
        assert isinstance(out, u.Quantity) and out.unit == u.nS
        np.testing.assert_allclose(np.asarray(out.to_decimal(u.nS)), reference(layer, x),
                                   atol=1e-5)
        assert layer.todense().unit == u.nS
    graded = nn.FixedNumConn(12, 9, conn_num=2, weight=2.0 * u.nS, seed=0)
    rates = np.linspace(0.0, 10.0, 12).astype(F32)
    out = graded(rates * u.Hz)
    assert out.unit == u.nS * u.Hz
    np.testing.assert_allclose(np.asarray(out.mantissa), rates @ dense(graded), rtol=1e-5)
    normal = nn.Normal(0.5 * u.nS, 100 * u.psiemens)
    assert float(normal.std.to_decimal(u.nS)) == pytest.approx(0.1)

    layer = nn.EventFixedProb(12, 9, prob=0.5, weight=0.5 * u.nS, seed=1)

    def loss(w):
        return jnp.sum(layer.with_weight(w)(x).to_decimal(u.nS) ** 2)

    g = jax.grad(loss)(layer.weight)
    g_dense = dense_weight_grad(layer, x, jnp.zeros((3, 9)))
    np.testing.assert_allclose(np.asarray(u.get_mantissa(g)), entry_grads(layer, g_dense),
                               rtol=1e-5)


# ---------------------------------------------------------------------------
# Aliases, repr
# ---------------------------------------------------------------------------

def test_aliases():
    a = nn.EventFixedProb(*SHAPE, conn_num=0.4, conn_weight=0.75, seed=5)
    b = nn.EventFixedProb(*SHAPE, prob=0.4, weight=0.75, seed=5)
    assert a.prob == 0.4
    np.testing.assert_array_equal(dense(a), dense(b))
    assert set(np.unique(dense(a))) == {0.0, 0.75}
    c = nn.EventFixedNumConn(*SHAPE, conn_num=4, conn_weight=0.75, seed=5)
    d = nn.FixedNumConn(*SHAPE, conn_num=4, weight=0.75, seed=5)
    np.testing.assert_array_equal(dense(c), dense(d))
    assert set(np.unique(dense(c))) == {0.0, 0.75}


def test_repr():
    assert repr(nn.EventLinear(3, 2, weight=1.0)) == ('EventLinear(n_pre=3, n_post=2, '
                                                      'weight=float32[3, 2])')
    csr = nn.EventFixedProb(*SHAPE, prob=0.5, seed=0)
    assert repr(csr) == (f"EventFixedProb(n_pre=12, n_post=9, prob=0.5, storage='csr', "
                         f"weight=float32[{csr.conn.nnz}])")
    assert repr(nn.EventFixedProb(*SHAPE, weight=nn.Normal(1.0, 0.5), storage='jitc')) == (
        "EventFixedProb(n_pre=12, n_post=9, prob=0.2, storage='jitc', "
        "weight=Normal(mean=1, std=0.5))")
    assert repr(nn.EventFixedProb(*SHAPE, weight=0.25 * u.mV, trainable=False)) == (
        "EventFixedProb(n_pre=12, n_post=9, prob=0.2, storage='jitc', weight=0.25 mV)")
    assert repr(nn.FixedNumConn(*SHAPE, conn_num=3, fixed='pre')) == (
        "FixedNumConn(n_pre=12, n_post=9, conn_num=3, fixed='pre', weight=float32[9, 3])")
    assert repr(nn.EventFixedNumConn(*SHAPE, conn_num=3, trainable=False)) == (
        "EventFixedNumConn(n_pre=12, n_post=9, conn_num=3, fixed='post', weight=0.5)")
    assert repr(nn.Uniform(-1 * u.mV, 1 * u.mV)) == 'Uniform(low=-1 mV, high=1 mV)'


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

def raises(exc, *fragments):
    """``pytest.raises`` whose message must contain every fragment."""
    return pytest.raises(exc, match=''.join(f'(?=[\\s\\S]*{re.escape(f)})' for f in fragments))


@layer_param
def test_wrong_input_size(kind):
    layer = LAYERS[kind](*SHAPE)
    name = type(layer).__name__
    for bad in (np.ones(5, bool), np.ones((2, 7), F32), be.BinaryArray(np.ones(4)),
                np.float32(1.0)):
        shape = str(tuple(np.shape(bad.value if isinstance(bad, be.BinaryArray) else bad)))
        with raises(ValueError, name, 'n_pre', '(12,)', f'received shape {shape}'):
            layer(bad)


@pytest.mark.parametrize('make', [
    lambda n: nn.EventLinear(n, 3, weight=1.0),
    lambda n: nn.EventFixedProb(n, 3),
    lambda n: nn.FixedNumConn(n, 3, conn_num=1),
], ids=['linear', 'prob', 'fixed'])
def test_bad_sizes(make):
    for bad, exc, received in ((0, ValueError, '0'), (-2, ValueError, '-2'),
                               (2.5, TypeError, '2.5'), (True, TypeError, 'True'),
                               ('4', TypeError, "'4'")):
        with raises(exc, 'n_pre must be a positive int', f'received {received}'):
            make(bad)
    with raises(ValueError, 'n_post must be a positive int', 'received 0'):
        nn.EventFixedProb(3, 0)


def test_bad_probability():
    for bad in (1.5, -0.1):
        with raises(ValueError, 'EventFixedProb', 'prob', '[0, 1]', f'received {bad}'):
            nn.EventFixedProb(5, 5, prob=bad)
    with raises(ValueError, 'conn_num', '[0, 1]', 'received 2.0'):
        nn.EventFixedProb(5, 5, conn_num=2.0)
    with raises(TypeError, 'prob', "received 'high'"):
        nn.EventFixedProb(5, 5, prob='high')
    with raises(TypeError, 'conn_num is the connection probability', 'received the int 3',
                'EventFixedNumConn'):
        nn.EventFixedProb(5, 5, conn_num=3)


def test_bad_conn_num():
    for cls in (nn.FixedNumConn, nn.EventFixedNumConn):
        with raises(ValueError, cls.__name__, 'conn_num must be a positive int', 'received 0'):
            cls(5, 5, conn_num=0)
        with raises(TypeError, 'conn_num must be a positive int', 'received 2.5'):
            cls(5, 5, conn_num=2.5)
        with raises(TypeError, 'conn_num must be a positive int', 'received 0.2',
                    'EventFixedProb'):
            cls(5, 5, conn_num=0.2)
        with raises(ValueError, 'conn_num=6', 'n_post=4', 'replace=True'):
            cls(5, 4, conn_num=6)
        with raises(ValueError, 'conn_num=6', 'n_pre=5', "fixed='pre'"):
            cls(5, 8, conn_num=6, fixed='pre')
        with raises(ValueError, 'conn_num=5', 'n_post=5 minus 1'):
            cls(5, 5, conn_num=5, allow_self_connections=False)
    with raises(ValueError, 'fixed must be', "received 'both'"):
        nn.FixedNumConn(5, 5, conn_num=2, fixed='both')


def test_bad_storage_and_conflicts():
    with raises(ValueError, 'storage', "'csr', 'jitc' or None", "received 'dense'"):
        nn.EventFixedProb(5, 5, storage='dense')
    with raises(ValueError, "storage='jitc'", 'trainable=True'):
        nn.EventFixedProb(5, 5, storage='jitc', trainable=True)
    with raises(ValueError, "storage='jitc'", 'self-connections'):
        nn.EventFixedProb(5, 5, storage='jitc', allow_self_connections=False)
    with raises(ValueError, 'allow_self_connections=False needs n_pre == n_post',
                'n_pre=5, n_post=4'):
        nn.EventFixedProb(5, 4, allow_self_connections=False)
    with raises(TypeError, 'trainable must be True or False', "received 'yes'"):
        nn.EventFixedProb(5, 5, trainable='yes')
    # an alias and its name together, even when the name repeats its default value
    with raises(TypeError, 'EventFixedProb got both prob=0.2 and conn_num=0.3', 'give one'):
        nn.EventFixedProb(5, 5, prob=0.2, conn_num=0.3)
    with raises(TypeError, 'got both weight=0.5 and conn_weight=1.0'):
        nn.EventFixedProb(5, 5, weight=0.5, conn_weight=1.0)
    with raises(TypeError, 'FixedNumConn got both weight=2.0 and conn_weight=1.0'):
        nn.FixedNumConn(5, 5, conn_num=2, weight=2.0, conn_weight=1.0)


def test_bad_weights():
    with raises(ValueError, 'EventLinear', 'weight', '(3, 2)', 'received shape (2, 3)'):
        nn.EventLinear(3, 2, weight=np.ones((2, 3)))
    layer = nn.EventLinear(3, 2, weight=1.0)
    with raises(ValueError, 'weight', '(3, 2)', 'received shape (6,)'):
        layer.with_weight(np.ones(6))
    with raises(TypeError, 'EventLinear: weight must be a number, an array', 'received NoneType'):
        nn.EventLinear(3, 2, weight=None)
    with raises(TypeError, 'EventFixedProb: weight must be a real number', 'brainevent.nn.Normal',
                'received None'):
        nn.EventFixedProb(3, 2, weight=None)
    with raises(ValueError, 'EventFixedProb', 'weight must be a real scalar', 'shape (3,)'):
        nn.EventFixedProb(3, 2, weight=np.ones(3))
    with raises(ValueError, 'FixedNumConn', '(3, 2)', 'received shape (3, 3)'):
        nn.FixedNumConn(3, 5, conn_num=2, weight=np.ones((3, 3)))
    with raises(ValueError, 'Normal', 'std must be >= 0', 'received mean=0.0, std=-1.0'):
        nn.Normal(0.0, -1.0)
    with raises(ValueError, 'Uniform', 'high must be >= low', 'low=1.0, high=0.0'):
        nn.Uniform(1.0, 0.0)
    with raises(ValueError, 'std is in', 'does not convert to mV'):
        nn.Normal(1.0 * u.mV, 1.0 * u.ms)
    with raises(TypeError, 'mean must be a real number', "received 'a'"):
        nn.Normal('a', 1.0)
    out = layer(np.array([1.0, 2.0, 0.5]) * u.mV)  # graded input with a unit: the float product
    assert u.get_unit(out) == u.mV
    np.testing.assert_allclose(np.asarray(u.get_mantissa(out)), [3.5, 3.5])
