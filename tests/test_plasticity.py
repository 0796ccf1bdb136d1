"""Event-driven plasticity updates (``update_*_on_binary_pre/post`` and the methods).

Every update is checked against a numpy reference written here from the rule:
for each stored entry ``(i, j)`` (in data order) with ``pre_spike[i] != 0``,
``w = clip(w + post_trace[j], w_min, w_max)`` (pre-driven), or with
``post_spike[j] != 0``, ``w = clip(w + pre_trace[i], w_min, w_max)``
(post-driven); other entries are unchanged, not clipped. A dense weight array
updates every element of a spiking row / column.

The matrices are built from numpy arrays the test controls (``Structure``), so
the ``(row, col)`` of every data element is known without asking the library.
The property tests and the transformation tests run on every CPU backend
(``backend`` fixture of conftest.py).
"""

import re
from typing import NamedTuple

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import brainevent as be
from strategies import precision, spikes as drawn_spikes

KINDS = ('dense', 'coo', 'csr', 'csc', 'fixed_post', 'fixed_pre')
SIDES = ('pre', 'post')
SPIKE_KINDS = ('bool', 'float', 'zeros', 'ones', 'graded')
INDEX_FIELDS = {'coo': ('row', 'col'), 'csr': ('indices', 'indptr'),
                'csc': ('indices', 'indptr'), 'fixed_post': ('indices',),
                'fixed_pre': ('indices',)}
CLASS_NAMES = {'coo': 'COO', 'csr': 'CSR', 'csc': 'CSC', 'fixed_post': 'FixedPostNumConn',
               'fixed_pre': 'FixedPreNumConn'}


def msg(*fragments):
    """A regex that matches when every literal fragment occurs in the message (any order)."""
    return '(?s)' + ''.join(f'(?=.*{re.escape(f)})' for f in fragments)


# ---------------------------------------------------------------------------
# Structures: matrices built from numpy arrays whose entry coordinates we know
# ---------------------------------------------------------------------------

class Structure(NamedTuple):
    """A matrix to build: ``rows[k], cols[k]`` is the position of data element ``k``
    (data in storage order, flattened); ``index`` holds the format's index arrays."""
    kind: str
    shape: tuple
    rows: np.ndarray
    cols: np.ndarray
    data: np.ndarray          # flat, in storage order
    index: dict               # field name -> numpy index array
    data_shape: tuple         # shape of the stored data array

    def build(self, data=None):
        """The matrix (a jnp array for 'dense'); call inside ``precision(dtype)``."""
        data = self.data if data is None else data
        d = np.asarray(data).reshape(self.data_shape) if not isinstance(data, u.Quantity) \
            else data.reshape(self.data_shape)
        m, n = self.shape
        if self.kind == 'dense':
            return jnp.asarray(d) if not isinstance(d, u.Quantity) else d
        if self.kind == 'coo':
            return be.COO((d, (self.index['row'], self.index['col'])), shape=self.shape)
        if self.kind == 'csr':
            return be.CSR((d, self.index['indices'], self.index['indptr']), shape=self.shape)
        if self.kind == 'csc':
            return be.CSC((d, self.index['indices'], self.index['indptr']), shape=self.shape)
        if self.kind == 'fixed_post':
            return be.FixedPostNumConn((d, self.index['indices']), shape=self.shape)
        return be.FixedPreNumConn((d, self.index['indices']), shape=self.shape)


def structure_from_entries(kind, shape, row, col, data):
    """COO / CSR / CSC of the given entries (duplicates and any order allowed)."""
    row, col = np.asarray(row, np.int32), np.asarray(col, np.int32)
    data = np.asarray(data)
    if kind == 'coo':
        return Structure(kind, shape, row, col, data, {'row': row, 'col': col}, data.shape)
    major, minor, extent = (row, col, shape[0]) if kind == 'csr' else (col, row, shape[1])
    order = np.argsort(major, kind='stable')
    indptr = np.concatenate([[0], np.cumsum(np.bincount(major, minlength=extent))]).astype(np.int32)
    return Structure(kind, shape, row[order], col[order], data[order],
                     {'indices': minor[order], 'indptr': indptr}, (row.size,))


def structure_fixed(kind, shape, indices, data):
    """FixedPostNumConn (indices (m, k) of columns) or FixedPreNumConn (indices (n, k) of rows)."""
    indices = np.asarray(indices, np.int32)
    data = np.asarray(data)
    owners = np.repeat(np.arange(indices.shape[0], dtype=np.int32), indices.shape[1])
    others = indices.reshape(-1)
    rows, cols = (owners, others) if kind == 'fixed_post' else (others, owners)
    return Structure(kind, shape, rows, cols, data.reshape(-1), {'indices': indices}, data.shape)


def structure_dense(dense):
    dense = np.asarray(dense)
    rows, cols = np.indices(dense.shape).reshape(2, -1).astype(np.int32)
    return Structure('dense', dense.shape, rows, cols, dense.reshape(-1), {}, dense.shape)


@st.composite
def structures(draw, kind, max_dim=7):
    """Random non-empty structures of ``kind`` (few examples run, so none is spent on a
    0-row or 0-column shape: ``test_empty_shapes`` covers those): empty rows and
    columns, duplicates and unsorted entries for COO/CSR/CSC, duplicated indices in a
    row for the fixed-degree formats. Hypothesis' first (simplest) example is a full
    ``max_dim x max_dim`` structure."""
    dtype = np.dtype(draw(st.sampled_from([np.float32, np.float64])))
    m = max_dim + 1 - draw(st.integers(1, max_dim))
    n = max_dim + 1 - draw(st.integers(1, max_dim))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31)))
    if kind == 'dense':
        dense = rng.uniform(-2, 2, (m, n)) * (rng.random((m, n)) < 0.7)
        return structure_dense(dense.astype(dtype))
    if kind in ('coo', 'csr', 'csc'):
        cells = m * n
        nnz = cells // 2 + 1 - draw(st.integers(1, cells // 2 + 1))  # 0 .. cells // 2
        flat = rng.choice(cells, nnz, replace=False)
        if nnz and draw(st.booleans()):  # duplicates
            flat = np.concatenate([flat, rng.choice(flat, draw(st.integers(1, nnz)))])
        rng.shuffle(flat)
        return structure_from_entries(kind, (m, n), flat // n, flat % n,
                                      rng.uniform(-2, 2, flat.size).astype(dtype))
    owners, targets = (m, n) if kind == 'fixed_post' else (n, m)
    replace = draw(st.booleans())
    k_max = 4 if replace else min(targets, 4)
    k = k_max - draw(st.integers(0, k_max))  # simplest: k_max
    if replace:  # duplicated indices in a row are allowed (each entry is updated)
        indices = rng.integers(0, targets, (owners, k))
    else:
        indices = np.array([np.sort(rng.choice(targets, k, replace=False))
                            for _ in range(owners)]).reshape(owners, k)
    data = rng.uniform(-2, 2, (owners, k)).astype(dtype)
    return structure_fixed(kind, (m, n), indices, data)


def example_structure(kind, dtype=np.float32, seed=0):
    """A fixed 6 x 5 example: duplicates (coo, csr, csc, fixed), an empty row and column."""
    rng = np.random.default_rng(seed)
    shape = (6, 5)
    if kind == 'dense':
        return structure_dense(rng.uniform(-1, 1, shape).astype(dtype))
    if kind in ('coo', 'csr', 'csc'):
        row = np.array([0, 3, 1, 1, 5, 3, 0, 2, 5, 1, 3], np.int32)   # row 4 empty
        col = np.array([1, 0, 4, 2, 3, 0, 2, 1, 0, 4, 3], np.int32)   # (3, 0) and (1, 4) twice
        data = rng.uniform(-1, 1, row.size).astype(dtype)
        return structure_from_entries(kind, shape, row, col, data)
    owners, targets = (6, 5) if kind == 'fixed_post' else (5, 6)
    indices = rng.integers(0, targets, (owners, 3))
    indices[0] = [1, 1, 2]  # a duplicate
    return structure_fixed(kind, shape, indices, rng.uniform(-1, 1, (owners, 3)).astype(dtype))


# ---------------------------------------------------------------------------
# Reference and calls
# ---------------------------------------------------------------------------

def reference(st_, side, spike, trace, w_min=None, w_max=None, data=None):
    """The updated flat data of ``st_`` (numpy, the structure's dtype)."""
    w = np.array(st_.data if data is None else data, copy=True)
    fired = np.asarray(spike) != 0
    trace = np.asarray(trace, w.dtype)
    if side == 'pre':
        hit, add = fired[st_.rows], trace[st_.cols]
    else:
        hit, add = fired[st_.cols], trace[st_.rows]
    new = w[hit] + add[hit]
    if w_min is not None or w_max is not None:
        new = np.clip(new, w_min, w_max)
    w[hit] = new
    return w


def functions(kind, side):
    """``(name, f)``: every way to run the update on ``kind``, each ``f(matrix, a, b, **kw)``
    with ``(a, b) = (pre_spike, post_trace)`` (pre) or ``(pre_trace, post_spike)`` (post)."""
    fs = []
    if kind in ('dense', 'coo', 'csr', 'csc'):
        name = f'update_{kind}_on_binary_{side}'
        fs.append((name, getattr(be, name)))
    fs.append((f'update_on_binary_{side}', getattr(be, f'update_on_binary_{side}')))
    if kind != 'dense':
        fs.append((f'.update_on_{side}',
                   lambda m, a, b, **kw: getattr(m, f'update_on_{side}')(a, b, **kw)))
    return fs


def args(side, spike, trace):
    return (spike, trace) if side == 'pre' else (trace, spike)


def spike_array(rng, n, kind):
    if kind == 'graded':  # any nonzero value is a spike
        return np.where(rng.random(n) < 0.4, rng.choice([0.5, -1.0, 2.0, 1e-3], n), 0.0
                        ).astype(np.float32)
    return drawn_spikes(rng, n, kind)


def data_of(out):
    return out if isinstance(out, (jax.Array, np.ndarray, u.Quantity)) else out.data


def tol(dtype):
    return 1e-6 if np.dtype(dtype) == np.float32 else 1e-12


def check_result(out, st_, matrix, expected, name=''):
    """``out`` has ``matrix``'s class, shape, index arrays and data shape, and data ``expected``."""
    dtype = st_.data.dtype
    if st_.kind == 'dense':
        assert isinstance(out, jax.Array), (name, type(out))
        assert out.shape == st_.shape and out.dtype == dtype, (name, out.shape, out.dtype)
        got = np.asarray(out).reshape(-1)
    else:
        assert type(out) is type(matrix), (name, type(out))
        assert out.shape == matrix.shape, (name, out.shape)
        for field in INDEX_FIELDS[st_.kind]:
            a, b = np.asarray(getattr(out, field)), np.asarray(getattr(matrix, field))
            assert a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b), (name, field)
        assert out.data.shape == matrix.data.shape, (name, out.data.shape, matrix.data.shape)
        assert out.dtype == dtype, (name, out.dtype)
        got = np.asarray(out.data).reshape(-1)
    np.testing.assert_allclose(got, expected, rtol=tol(dtype), atol=tol(dtype), err_msg=name)


# ---------------------------------------------------------------------------
# 1. Agreement with the reference (hypothesis)
# ---------------------------------------------------------------------------

bounds = st.sampled_from([(None, None), (-0.5, 0.7), (None, 0.3), (-0.2, None), (0.0, 0.0)])


@pytest.mark.usefixtures('backend')
@pytest.mark.parametrize('side', SIDES)
@pytest.mark.parametrize('kind', KINDS)
@given(data=st.data(), spike_kind=st.sampled_from(SPIKE_KINDS), bound=bounds,
       wrap=st.sampled_from(['numpy', 'jax', 'binary']), seed=st.integers(0, 2 ** 31))
@settings(max_examples=6)  # x 6 kinds x 2 sides x 2 backends; each new shape compiles
def test_update_matches_reference(kind, side, data, spike_kind, bound, wrap, seed):
    st_ = data.draw(structures(kind))
    rng = np.random.default_rng(seed)
    m, n = st_.shape
    dtype = st_.data.dtype
    spiking, traced = (m, n) if side == 'pre' else (n, m)
    spike = spike_array(rng, spiking, spike_kind)
    trace = rng.uniform(-1, 1, traced).astype(dtype)
    w_min, w_max = bound
    expected = reference(st_, side, spike, trace, w_min, w_max)
    with precision(dtype):
        matrix = st_.build()
        before = np.asarray(data_of(matrix)).copy()
        if wrap == 'binary':
            spike_in, trace_in = be.BinaryArray(jnp.asarray(spike)), jnp.asarray(trace)
        elif wrap == 'jax':
            spike_in, trace_in = jnp.asarray(spike), jnp.asarray(trace)
        else:
            spike_in, trace_in = spike, trace
        kw = {} if bound == (None, None) else {'w_min': w_min, 'w_max': w_max}
        for name, f in functions(kind, side):
            out = f(matrix, *args(side, spike_in, trace_in), **kw)
            check_result(out, st_, matrix, expected, name)
        # the input is not modified (no buffer is updated in place)
        np.testing.assert_array_equal(np.asarray(data_of(matrix)), before)


@pytest.mark.usefixtures('backend')
@pytest.mark.parametrize('kind', KINDS)
def test_empty_shapes(kind):
    """0-row and 0-column matrices, and matrices without entries, on both sides."""
    for shape in [(0, 0), (0, 4), (4, 0), (3, 4)]:
        m, n = shape
        if kind == 'dense':
            st_ = structure_dense(np.zeros(shape, np.float32))
        elif kind in ('coo', 'csr', 'csc'):
            st_ = structure_from_entries(kind, shape, [], [], np.zeros(0, np.float32))
        else:  # a fixed-degree format: no owner, or no entry per owner
            owners, targets = shape if kind == 'fixed_post' else shape[::-1]
            k = 2 if targets and not owners else 0
            st_ = structure_fixed(kind, shape, np.zeros((owners, k), int),
                                  np.zeros((owners, k), np.float32))
        matrix = st_.build()
        for side in SIDES:
            spiking, traced = (m, n) if side == 'pre' else (n, m)
            spike, trace = np.ones(spiking, bool), np.full(traced, 0.75, np.float32)
            expected = reference(st_, side, spike, trace, None, 0.5)
            for name, f in functions(kind, side):
                out = f(matrix, *args(side, spike, trace), w_max=0.5)
                check_result(out, st_, matrix, expected, f'{name} {shape}')


@pytest.mark.parametrize('side', SIDES)
@pytest.mark.parametrize('kind', KINDS)
def test_entries_of_silent_neurons_are_not_clipped(kind, side):
    """Weights outside [w_min, w_max] stay where they are unless their neuron spikes."""
    st_ = example_structure(kind)
    data = st_.data * 10  # far outside the bounds
    m, n = st_.shape
    spiking, traced = (m, n) if side == 'pre' else (n, m)
    spike = np.zeros(spiking, bool)
    spike[1] = True
    trace = np.full(traced, 0.25, np.float32)
    expected = reference(st_, side, spike, trace, -1.0, 1.0, data=data)
    assert np.any(np.abs(expected) > 1), 'the example must keep some out-of-bound weights'
    matrix = st_.build(data)
    for name, f in functions(kind, side):
        out = f(matrix, *args(side, spike, trace), w_min=-1.0, w_max=1.0)
        check_result(out, st_._replace(data=data), matrix, expected, name)


def test_duplicate_entries_each_get_the_trace():
    """Two stored entries at (0, 1): each is updated, so the dense value moves by 2x trace."""
    coo = be.COO((jnp.array([1.0, 2.0, 5.0]), (jnp.array([0, 0, 1]), jnp.array([1, 1, 0]))),
                 shape=(2, 2))
    out = be.update_coo_on_binary_pre(coo, jnp.array([True, False]), jnp.array([0.0, 0.5]))
    np.testing.assert_allclose(out.data, [1.5, 2.5, 5.0])
    np.testing.assert_allclose(out.todense(), [[0.0, 4.0], [5.0, 0.0]])
    out = be.update_coo_on_binary_post(coo, jnp.array([0.25, 3.0]), jnp.array([False, True]),
                                       w_max=2.0)
    np.testing.assert_allclose(out.data, [1.25, 2.0, 5.0])


@pytest.mark.usefixtures('backend')
def test_post_update_on_many_structures_of_one_shape():
    """The CSR->CSC grouping is cached per structure: structures with the same shape and
    nnz (created and dropped one after the other) must never share one."""
    rng = np.random.default_rng(3)
    pre_trace = rng.uniform(-1, 1, 8).astype(np.float32)
    for i in range(6):
        flat = rng.choice(8 * 9, 20, replace=False)
        st_ = structure_from_entries('csr', (8, 9), flat // 9, flat % 9,
                                     rng.uniform(-1, 1, 20).astype(np.float32))
        post_spike = rng.random(9) < 0.5
        csr = st_.build()
        out = be.update_csr_on_binary_post(csr, pre_trace, post_spike)
        check_result(out, st_, csr, reference(st_, 'post', post_spike, pre_trace), f'csr {i}')
        csc_st = structure_from_entries('csc', (8, 9), flat // 9, flat % 9, st_.data)
        csc = csc_st.build()
        pre_spike, post_trace = rng.random(8) < 0.5, rng.uniform(-1, 1, 9).astype(np.float32)
        out = be.update_csc_on_binary_pre(csc, pre_spike, post_trace)
        check_result(out, csc_st, csc, reference(csc_st, 'pre', pre_spike, post_trace),
                     f'csc {i}')
        del csr, csc, out


# ---------------------------------------------------------------------------
# 2. jit and vmap
# ---------------------------------------------------------------------------

@pytest.mark.usefixtures('backend')
@pytest.mark.parametrize('side', SIDES)
@pytest.mark.parametrize('kind', KINDS)
def test_update_under_jit(kind, side):
    st_ = example_structure(kind)
    rng = np.random.default_rng(1)
    m, n = st_.shape
    spiking, traced = (m, n) if side == 'pre' else (n, m)
    spike = rng.random(spiking) < 0.5
    trace = rng.uniform(-1, 1, traced).astype(np.float32)
    matrix = st_.build()
    name, f = functions(kind, side)[0]
    expected = reference(st_, side, spike, trace, -0.6, 0.6)

    # the matrix as an argument (index arrays traced), bounds traced too
    as_arg = jax.jit(lambda w, s, t, lo, hi: f(w, *args(side, s, t), w_min=lo, w_max=hi))
    check_result(as_arg(matrix, spike, trace, -0.6, 0.6), st_, matrix, expected, name)
    # the matrix closed over (index arrays are constants)
    closed = jax.jit(lambda s, t: f(matrix, *args(side, s, t), w_min=-0.6, w_max=0.6))
    check_result(closed(spike, trace), st_, matrix, expected, name)
    # a second call with other spikes reuses the compiled function
    spike2 = ~spike
    check_result(closed(spike2, trace), st_, matrix,
                 reference(st_, side, spike2, trace, -0.6, 0.6), name)
    # the old weights are still readable after the update in the same function (the
    # update may write its output over the data buffer; XLA must copy when it is live)
    both = jax.jit(lambda w, s, t: (data_of(f(w, *args(side, s, t))), data_of(w)))
    new, old = both(matrix, spike, trace)
    np.testing.assert_array_equal(np.asarray(old), np.asarray(data_of(matrix)))
    np.testing.assert_allclose(np.asarray(new).reshape(-1), reference(st_, side, spike, trace),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.usefixtures('backend')
@pytest.mark.parametrize('kind', KINDS)
def test_update_in_scan_with_data_in_carry(kind):
    """The scan idiom for every format: ``data`` in the carry, ``m.with_data(data)`` in the
    body, a pre- then a post-driven update per step."""
    st_ = example_structure(kind)
    rng = np.random.default_rng(5)
    m, n = st_.shape
    steps = 4
    pre = rng.random((steps, m)) < 0.5
    post = rng.random((steps, n)) < 0.5
    post_traces = rng.uniform(-0.3, 0.3, (steps, n)).astype(np.float32)
    pre_traces = rng.uniform(-0.3, 0.3, (steps, m)).astype(np.float32)
    matrix = st_.build()
    pre_f, post_f = functions(kind, 'pre')[0][1], functions(kind, 'post')[0][1]

    def step(w, xs):
        s_pre, s_post, x_post, x_pre = xs
        conn = w if kind == 'dense' else matrix.with_data(w)
        conn = pre_f(conn, s_pre, x_post, w_min=-0.5, w_max=0.5)
        conn = post_f(conn, x_pre, s_post, w_min=-0.5, w_max=0.5)
        return data_of(conn), None

    w, _ = jax.lax.scan(step, data_of(matrix), (pre, post, post_traces, pre_traces))
    expected = st_.data
    for t in range(steps):
        expected = reference(st_, 'pre', pre[t], post_traces[t], -0.5, 0.5, data=expected)
        expected = reference(st_, 'post', post[t], pre_traces[t], -0.5, 0.5, data=expected)
    assert w.shape == np.shape(data_of(matrix))
    np.testing.assert_allclose(np.asarray(w).reshape(-1), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.usefixtures('backend')
@pytest.mark.parametrize('side', SIDES)
@pytest.mark.parametrize('kind', KINDS)
def test_update_under_vmap(kind, side):
    """vmap over the spikes (a batch of data), and over spikes and traces together."""
    st_ = example_structure(kind)
    rng = np.random.default_rng(2)
    m, n = st_.shape
    spiking, traced = (m, n) if side == 'pre' else (n, m)
    spikes = (rng.random((4, spiking)) < 0.5).astype(np.float32)
    traces = rng.uniform(-1, 1, (4, traced)).astype(np.float32)
    matrix = st_.build()
    name, f = functions(kind, side)[0]

    batch = jax.vmap(lambda s: data_of(f(matrix, *args(side, s, traces[0]))))(spikes)
    assert batch.shape == (4,) + tuple(np.shape(data_of(matrix)))
    for b in range(4):
        np.testing.assert_allclose(np.asarray(batch[b]).reshape(-1),
                                   reference(st_, side, spikes[b], traces[0]),
                                   rtol=1e-6, atol=1e-6, err_msg=f'{name} [{b}]')
    both = jax.jit(jax.vmap(lambda s, t: data_of(f(matrix, *args(side, s, t), w_max=0.4))))(
        spikes, traces)
    for b in range(4):
        np.testing.assert_allclose(np.asarray(both[b]).reshape(-1),
                                   reference(st_, side, spikes[b], traces[b], None, 0.4),
                                   rtol=1e-6, atol=1e-6, err_msg=f'{name} [{b}]')


# ---------------------------------------------------------------------------
# 3. Pair-based STDP in lax.scan against a numpy loop
# ---------------------------------------------------------------------------

STDP = dict(n=200, p=0.1, steps=1000, rate=0.03, tau_pre=20.0, tau_post=20.0,
            a_plus=0.01, a_minus=0.012, w_max=1.0)


def stdp_problem(seed=0):
    """A random 200 x 200 CSR (p = 0.1, sorted structure), initial weights and spike trains."""
    rng = np.random.default_rng(seed)
    n, p = STDP['n'], STDP['p']
    mask = rng.random((n, n)) < p
    row, col = np.nonzero(mask)
    w0 = rng.uniform(0, STDP['w_max'], row.size)
    pre = rng.random((STDP['steps'], n)) < STDP['rate']
    post = rng.random((STDP['steps'], n)) < STDP['rate']
    return structure_from_entries('csr', (n, n), row, col, w0), pre, post


def stdp_numpy(st_, pre, post):
    """Trace decay, +spike; depression on pre spikes, then potentiation on post spikes."""
    d_pre, d_post = np.exp(-1 / STDP['tau_pre']), np.exp(-1 / STDP['tau_post'])
    n = st_.shape[0]
    x_pre, x_post = np.zeros(n), np.zeros(n)
    w = st_.data.astype(np.float64).copy()
    for s_pre, s_post in zip(pre, post):
        x_pre = x_pre * d_pre + s_pre
        x_post = x_post * d_post + s_post
        hit = s_pre[st_.rows]
        w[hit] = np.clip(w[hit] - STDP['a_minus'] * x_post[st_.cols[hit]], 0.0, STDP['w_max'])
        hit = s_post[st_.cols]
        w[hit] = np.clip(w[hit] + STDP['a_plus'] * x_pre[st_.rows[hit]], 0.0, STDP['w_max'])
    return w


_STDP_CACHE = {}


def stdp_expected():
    if not _STDP_CACHE:
        st_, pre, post = stdp_problem()
        _STDP_CACHE['value'] = (st_, pre, post, stdp_numpy(st_, pre, post))
    return _STDP_CACHE['value']


def stdp_scan(csr, pre, post, carry_kind, dtype):
    d_pre = jnp.asarray(np.exp(-1 / STDP['tau_pre']), dtype)
    d_post = jnp.asarray(np.exp(-1 / STDP['tau_post']), dtype)
    n = csr.shape[0]

    def step(carry, spikes):
        s_pre, s_post = spikes
        w, x_pre, x_post = carry
        x_pre = x_pre * d_pre + s_pre
        x_post = x_post * d_post + s_post
        if carry_kind == 'data':
            conn = csr.with_data(w)
            conn = be.update_csr_on_binary_pre(conn, s_pre, -STDP['a_minus'] * x_post,
                                               w_min=0.0, w_max=STDP['w_max'])
            conn = be.update_csr_on_binary_post(conn, STDP['a_plus'] * x_pre,
                                                be.BinaryArray(s_post),
                                                w_min=0.0, w_max=STDP['w_max'])
            w = conn.data
        else:  # the whole matrix in the carry, through the methods
            w = w.update_on_pre(s_pre, -STDP['a_minus'] * x_post, w_min=0.0, w_max=STDP['w_max'])
            w = w.update_on_post(STDP['a_plus'] * x_pre, s_post, w_min=0.0, w_max=STDP['w_max'])
        return (w, x_pre, x_post), None

    w0 = csr.data if carry_kind == 'data' else csr
    init = (w0, jnp.zeros(n, dtype), jnp.zeros(n, dtype))
    xs = (jnp.asarray(pre, dtype), jnp.asarray(post, dtype))
    (w, _, _), _ = jax.jit(lambda init, xs: jax.lax.scan(step, init, xs))(init, xs)
    return w


@pytest.mark.usefixtures('backend')
@pytest.mark.parametrize('carry_kind, dtype', [('data', np.float64), ('matrix', np.float64),
                                               ('data', np.float32)])
def test_stdp_scan_matches_numpy_loop(carry_kind, dtype):
    st_, pre, post, expected = stdp_expected()
    with precision(dtype):
        csr = st_.build(st_.data.astype(dtype))
        out = stdp_scan(csr, pre, post, carry_kind, dtype)
        if carry_kind == 'matrix':
            assert type(out) is be.CSR
            np.testing.assert_array_equal(out.indices, csr.indices)
            np.testing.assert_array_equal(out.indptr, csr.indptr)
            out = out.data
        w = np.asarray(out)
    assert w.dtype == dtype
    atol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(w, expected, rtol=0, atol=atol)
    # the run is not trivial: many weights moved, some reached each bound
    assert np.mean(np.abs(expected - st_.data) > 1e-3) > 0.5
    assert np.any(expected == 0.0) and np.any(expected == STDP['w_max'])
    assert np.all((w >= 0) & (w <= STDP['w_max']))


# ---------------------------------------------------------------------------
# 4. Units
# ---------------------------------------------------------------------------

UNIT_KINDS = ('coo', 'csr', 'csc', 'fixed_post', 'fixed_pre', 'dense')


def unit_problem(kind, side):
    st_ = example_structure(kind)
    rng = np.random.default_rng(4)
    m, n = st_.shape
    spiking, traced = (m, n) if side == 'pre' else (n, m)
    spike = rng.random(spiking) < 0.5
    spike[0] = True
    trace = rng.uniform(-1, 1, traced).astype(np.float32)
    return st_, spike, trace


def unit_data(out):
    return data_of(out)


@pytest.mark.parametrize('side', SIDES)
@pytest.mark.parametrize('kind', UNIT_KINDS)
def test_units_same_unit(kind, side):
    st_, spike, trace = unit_problem(kind, side)
    matrix = st_.build(st_.data * u.mS)
    expected = reference(st_, side, spike, trace, -0.5, 0.5)
    for name, f in functions(kind, side):
        out = f(matrix, *args(side, spike, trace * u.mS), w_min=-0.5 * u.mS, w_max=0.5 * u.mS)
        w = unit_data(out)
        assert isinstance(w, u.Quantity) and w.unit == u.mS, (name, w)
        np.testing.assert_allclose(np.asarray(w.to_decimal(u.mS)).reshape(-1), expected,
                                   rtol=1e-6, atol=1e-6, err_msg=name)
        if kind != 'dense':
            assert out.unit == u.mS
        # no bounds: the trace alone in the weight's unit
        out = f(matrix, *args(side, spike, trace * u.mS))
        np.testing.assert_allclose(np.asarray(unit_data(out).to_decimal(u.mS)).reshape(-1),
                                   reference(st_, side, spike, trace), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('side', SIDES)
@pytest.mark.parametrize('kind', ['csr', 'fixed_post', 'dense'])
def test_units_compatible_unit_is_converted(kind, side):
    """A trace (and bounds) in uS added to mS weights: converted to mS (1000 uS = 1 mS)."""
    st_, spike, trace = unit_problem(kind, side)
    matrix = st_.build(st_.data * u.mS)
    expected = reference(st_, side, spike, trace / 1000, -0.5, 0.5)
    for name, f in functions(kind, side):
        out = f(matrix, *args(side, spike, trace * u.uS), w_min=-500 * u.uS, w_max=0.5 * u.mS)
        w = unit_data(out)
        assert isinstance(w, u.Quantity) and w.unit == u.mS, (name, w)
        np.testing.assert_allclose(np.asarray(w.to_decimal(u.mS)).reshape(-1), expected,
                                   rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize('side', SIDES)
@pytest.mark.parametrize('kind', UNIT_KINDS)
def test_units_mismatch_raises(kind, side):
    st_, spike, trace = unit_problem(kind, side)
    with_units = st_.build(st_.data * u.mS)
    plain = st_.build()
    for name, f in functions(kind, side):
        with pytest.raises(u.UnitMismatchError):      # incompatible unit
            f(with_units, *args(side, spike, trace * u.mV))
        with pytest.raises(u.UnitMismatchError):      # unitless trace on mS weights
            f(with_units, *args(side, spike, trace))
        with pytest.raises(u.UnitMismatchError):      # mS trace on unitless weights
            f(plain, *args(side, spike, trace * u.mS))
        with pytest.raises(u.UnitMismatchError):      # bound in an incompatible unit
            f(with_units, *args(side, spike, trace * u.mS), w_max=1.0 * u.mV)
        with pytest.raises(u.UnitMismatchError):      # unitless bound on mS weights
            f(with_units, *args(side, spike, trace * u.mS), w_min=0.0)
        with pytest.raises(TypeError, match=msg('spike', 'unitless')):  # spikes with a unit
            f(with_units, *args(side, spike * u.mS, trace * u.mS))


def test_units_in_jit_and_scan():
    st_, spike, trace = unit_problem('csr', 'pre')
    csr = st_.build(st_.data * u.mS)
    f = jax.jit(lambda w, s, t: be.update_on_binary_pre(w, s, t, w_min=0 * u.mS, w_max=1 * u.mS))
    out = f(csr, spike, trace * u.mS)
    assert out.unit == u.mS
    np.testing.assert_allclose(np.asarray(out.data.to_decimal(u.mS)),
                               reference(st_, 'pre', spike, trace, 0, 1), rtol=1e-6, atol=1e-6)

    def step(w, s):
        return csr.with_data(w).update_on_pre(s, trace * u.mS).data, None

    spikes = np.stack([spike, ~spike, spike])
    w, _ = jax.lax.scan(step, csr.data, spikes)
    expected = st_.data
    for s in spikes:
        expected = reference(st_, 'pre', s, trace, data=expected)
    assert w.unit == u.mS
    np.testing.assert_allclose(np.asarray(w.to_decimal(u.mS)), expected, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------
# 5. Errors
# ---------------------------------------------------------------------------

def homogeneous(kind):
    if kind == 'coo':
        return be.COO((0.5, (jnp.array([0, 1, 2]), jnp.array([1, 0, 3]))), shape=(4, 5))
    if kind == 'csr':
        return be.CSR((0.5, jnp.array([1, 0, 3]), jnp.array([0, 1, 2, 3, 3])), shape=(4, 5))
    if kind == 'csc':
        return be.CSC((0.5, jnp.array([1, 0, 3]), jnp.array([0, 1, 2, 3, 3, 3])), shape=(4, 5))
    if kind == 'fixed_post':
        return be.FixedPostNumConn(4, 5, 2, weight=0.5, seed=1)
    return be.FixedPreNumConn(4, 5, 2, weight=0.5, seed=1)


@pytest.mark.parametrize('side', SIDES)
@pytest.mark.parametrize('kind', KINDS[1:])
def test_homogeneous_matrix_raises(kind, side):
    matrix = homogeneous(kind)
    assert matrix.is_homogeneous
    spike, trace = (np.ones(4, bool), np.ones(5)) if side == 'pre' else \
        (np.ones(5, bool), np.ones(4))
    for name, f in functions(kind, side):
        with pytest.raises(ValueError, match=msg('homogeneous', 'full_data')):
            f(matrix, *args(side, spike, trace))
    # the suggested fix works
    full = matrix.with_data(matrix.full_data())
    out = functions(kind, side)[-1][1](full, *args(side, spike, trace))
    assert not out.is_homogeneous


@pytest.mark.parametrize('side', SIDES)
def test_jitc_matrix_raises(side):
    jitc = be.JITCScalarR((0.5, 0.1, 0), shape=(5, 5))
    spike, trace = np.ones(5, bool), np.ones(5, np.float32)
    generic = getattr(be, f'update_on_binary_{side}')
    with pytest.raises(TypeError, match='JITCScalarR'):
        generic(jitc, *args(side, spike, trace))
    for fmt in ('csr', 'csc', 'coo'):
        with pytest.raises(TypeError, match='JITCScalarR'):
            getattr(be, f'update_{fmt}_on_binary_{side}')(jitc, *args(side, spike, trace))


@pytest.mark.parametrize('side', SIDES)
@pytest.mark.parametrize('fmt', ['coo', 'csr', 'csc'])
def test_wrong_matrix_class_raises(fmt, side):
    st_ = example_structure('coo')
    f = getattr(be, f'update_{fmt}_on_binary_{side}')
    spike, trace = (np.ones(6, bool), np.ones(5)) if side == 'pre' else \
        (np.ones(5, bool), np.ones(6))
    others = {'coo': be.COO, 'csr': be.CSR, 'csc': be.CSC}
    for other_fmt, cls in others.items():
        if other_fmt == fmt:
            continue
        other = cls(st_.build())
        with pytest.raises(TypeError, match=msg(CLASS_NAMES[fmt], cls.__name__)):
            f(other, *args(side, spike, trace))
    fixed = structure_fixed('fixed_post', (6, 5), np.zeros((6, 2), int), np.ones((6, 2))).build()
    with pytest.raises(TypeError, match=msg(CLASS_NAMES[fmt], 'FixedPostNumConn')):
        f(fixed, *args(side, spike, trace))
    with pytest.raises(TypeError, match=CLASS_NAMES[fmt]):
        f(jnp.ones((6, 5)), *args(side, spike, trace))


@pytest.mark.parametrize('side', SIDES)
def test_dense_function_refuses_sparse(side):
    csr = example_structure('csr').build()
    spike, trace = (np.ones(6, bool), np.ones(5)) if side == 'pre' else \
        (np.ones(5, bool), np.ones(6))
    with pytest.raises(TypeError, match='CSR'):
        getattr(be, f'update_dense_on_binary_{side}')(csr, *args(side, spike, trace))


@pytest.mark.parametrize('side', SIDES)
@pytest.mark.parametrize('kind', KINDS)
def test_bad_spike_and_trace_shapes_raise(kind, side):
    """Shape (6, 5): the spikes/trace of the wrong side, or 2-D ones, name the argument."""
    matrix = example_structure(kind).build()
    spike_name, trace_name = ('pre_spike', 'post_trace') if side == 'pre' else \
        ('post_spike', 'pre_trace')
    spiking, traced = (6, 5) if side == 'pre' else (5, 6)
    good_spike, good_trace = np.ones(spiking, bool), np.ones(traced, np.float32)
    for name, f in functions(kind, side):
        with pytest.raises(ValueError, match=msg(spike_name, str(spiking), '9')):
            f(matrix, *args(side, np.ones(9, bool), good_trace))
        with pytest.raises(ValueError, match=msg(trace_name, str(traced), '3')):
            f(matrix, *args(side, good_spike, np.ones(3, np.float32)))
        with pytest.raises(ValueError, match=spike_name):
            f(matrix, *args(side, np.ones((2, spiking), bool), good_trace))
        with pytest.raises(ValueError, match=spike_name):
            f(matrix, *args(side, be.BinaryArray(np.ones((2, spiking), bool)), good_trace))
        with pytest.raises(ValueError, match=trace_name):
            f(matrix, *args(side, good_spike, np.ones((2, traced), np.float32)))
        with pytest.raises(ValueError, match=spike_name):  # a scalar spike
            f(matrix, *args(side, np.bool_(True), good_trace))


@pytest.mark.parametrize('kind', KINDS)
def test_w_min_above_w_max_raises_when_concrete(kind):
    """The spec: ``w_min > w_max`` is not checked when traced, so it is when concrete."""
    matrix = example_structure(kind).build()
    for name, f in functions(kind, 'pre'):
        with pytest.raises(ValueError, match=msg('w_min', 'w_max')):
            f(matrix, np.ones(6, bool), np.ones(5, np.float32), w_min=1.0, w_max=0.5)


@pytest.mark.usefixtures('backend')
@pytest.mark.parametrize('side', SIDES)
@pytest.mark.parametrize('kind', ['dense', 'csr', 'fixed_post'])
def test_traced_w_min_above_w_max_clips_as_numpy(kind, side):
    """Unchecked under jit: every backend then gives np.clip's value, min(max(w, lo), hi)."""
    st_ = example_structure(kind)
    m, n = st_.shape
    spiking, traced = (m, n) if side == 'pre' else (n, m)
    spike, trace = np.ones(spiking, bool), np.full(traced, 0.1, np.float32)
    matrix = st_.build()
    name, f = functions(kind, side)[0]
    out = jax.jit(lambda lo, hi: f(matrix, *args(side, spike, trace), w_min=lo, w_max=hi))(
        0.5, -0.5)
    check_result(out, st_, matrix, reference(st_, side, spike, trace, 0.5, -0.5), name)


# ---------------------------------------------------------------------------
# Derivatives through an update
# ---------------------------------------------------------------------------

@pytest.mark.usefixtures('backend')
@pytest.mark.parametrize('side', SIDES)
@pytest.mark.parametrize('kind', KINDS)
def test_gradient_through_update_matches_reference(kind, side):
    """``jax.grad`` of ``sum(new ** 2)`` w.r.t. the weights and the trace, against numpy.

    ``new = clip(w + trace[k], lo, hi)`` on spiking entries, ``w`` elsewhere: the weight
    derivative is 1 off the spikes and 1 inside the bounds (0 where clipped); the trace
    derivative sums over the spiking entries that read it, inside the bounds.
    """
    st_ = example_structure(kind)
    rng = np.random.default_rng(5)
    m, n = st_.shape
    spike = rng.random(m if side == 'pre' else n) < 0.5
    trace = rng.uniform(-1, 1, n if side == 'pre' else m).astype(np.float32)
    lo, hi = -0.6, 0.6
    name, f = functions(kind, side)[0]

    matrix = st_.build()

    def loss(data, t):
        data = data.reshape(st_.data_shape)
        w = data if kind == 'dense' else matrix.with_data(data)
        return jnp.sum(data_of(f(w, *args(side, spike, t), w_min=lo, w_max=hi)) ** 2)

    g_data, g_trace = jax.jit(jax.grad(loss, argnums=(0, 1)))(jnp.asarray(st_.data), trace)
    new = reference(st_, side, spike, trace, lo, hi)
    fired = spike[st_.rows] if side == 'pre' else spike[st_.cols]
    reads = st_.cols if side == 'pre' else st_.rows
    raw = st_.data + trace[reads]
    inside = (raw > lo) & (raw < hi)
    want_data = 2 * new * np.where(fired, inside, 1.0)
    want_trace = np.zeros_like(trace)
    np.add.at(want_trace, reads, 2 * new * (fired & inside))
    np.testing.assert_allclose(np.asarray(g_data).reshape(-1), want_data, rtol=1e-5, atol=1e-6,
                               err_msg=name)
    np.testing.assert_allclose(np.asarray(g_trace), want_trace, rtol=1e-5, atol=1e-6,
                               err_msg=name)
