"""Module functions: hstack / vstack, coo2csr, save_npz / load_npz, random."""

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import brainevent as be
from strategies import FORMATS, cases, precision


FORMAT_IDS = [cls.format for cls in FORMATS]


def assert_close(actual, expected):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


def random_dense(rng, shape, density=0.4, low=-1.0, high=1.0):
    values = rng.uniform(low, high, shape)
    return np.where(rng.random(shape) < density, values, 0).astype(np.float32)


# ---------------------------------------------------------------------------
# hstack / vstack
# ---------------------------------------------------------------------------

@given(formats=st.lists(st.sampled_from(FORMATS), min_size=1, max_size=3),
       sizes=st.lists(st.integers(0, 4), min_size=3, max_size=3), other=st.integers(0, 4),
       out=st.sampled_from([None, 'coo', 'csr', 'csc']), seed=st.integers(0, 2 ** 31))
@settings(max_examples=10)
def test_hstack_vstack_match_numpy(formats, sizes, other, out, seed):
    rng = np.random.default_rng(seed)
    vblocks = [random_dense(rng, (sizes[i], other)) for i in range(len(formats))]
    hblocks = [random_dense(rng, (other, sizes[i])) for i in range(len(formats))]
    kinds = {cls.format for cls in formats}
    expected_format = out or (kinds.pop() if len(kinds) == 1 else 'coo')
    v = be.vstack([cls(b) for cls, b in zip(formats, vblocks)], format=out)
    assert v.format == expected_format
    assert isinstance(v, be.SparseMatrix)
    assert v.shape == (sum(sizes[:len(formats)]), other)
    assert_close(v.todense(), np.vstack(vblocks))
    h = be.hstack([cls(b) for cls, b in zip(formats, hblocks)], format=out)
    assert h.format == expected_format
    assert h.shape == (other, sum(sizes[:len(formats)]))
    assert_close(h.todense(), np.hstack(hblocks))
    h.check_format()
    v.check_format()


@pytest.mark.parametrize('fmt', FORMAT_IDS)
def test_stack_matches_scipy(fmt):
    rng = np.random.default_rng(0)
    a, b = random_dense(rng, (3, 4)), random_dense(rng, (2, 4))
    ref = sp.vstack([sp.csr_array(a), sp.coo_array(b)], format=fmt)
    v = be.vstack([be.CSR(a), be.COO(b)], format=fmt)
    assert v.format == ref.format
    assert_close(v.todense(), ref.toarray())
    ref = sp.hstack([sp.csc_array(a.T), sp.csc_array(b.T)], format=fmt)
    h = be.hstack([be.CSC(a.T), be.CSC(b.T)], format=fmt)
    assert h.format == ref.format
    assert_close(h.todense(), ref.toarray())


def test_stack_dtype_and_homogeneous_blocks():
    a = be.COO((0.5, (np.array([0, 1]), np.array([1, 0]))), shape=(2, 2))
    b = be.CSR(np.array([[0., 2.], [3., 0.]], np.float32))
    v = be.vstack([a, b], format='csr', dtype=np.float16)
    assert v.format == 'csr' and v.dtype == np.float16
    np.testing.assert_array_equal(v.todense(),
                                  np.array([[0, .5], [.5, 0], [0, 2], [3, 0]], np.float16))
    h = be.hstack([a, a, b])
    assert h.format == 'coo'
    assert_close(h.todense(), [[0, .5, 0, .5, 0, 2], [.5, 0, .5, 0, 3, 0]])


@pytest.mark.parametrize('exc_cls', FORMATS, ids=FORMAT_IDS)
@pytest.mark.parametrize('inh_cls', FORMATS, ids=FORMAT_IDS)
def test_excitatory_inhibitory_assembly(exc_cls, inh_cls):
    rng = np.random.default_rng(1)
    n_exc, n_inh, n_post = 8, 3, 5
    w_exc = random_dense(rng, (n_exc, n_post), low=0.1, high=1.0)
    w_inh = random_dense(rng, (n_inh, n_post), low=-2.0, high=-0.5)
    w = be.vstack([exc_cls(w_exc), inh_cls(w_inh)], format='csr')
    assert type(w) is be.CSR
    dense = np.vstack([w_exc, w_inh])
    assert_close(w.todense(), dense)
    exc_spikes = be.BinaryArray(rng.random(n_exc) < 0.5)
    inh_spikes = be.BinaryArray(rng.random(n_inh) < 0.5)
    spikes = be.concatenate([exc_spikes, inh_spikes])
    mask = np.asarray(spikes.value).astype(np.float32)
    assert_close(spikes @ w, mask @ dense)
    # and the sliced blocks give each population's input
    assert_close(spikes[:n_exc] @ exc_cls(w_exc), mask[:n_exc] @ w_exc)
    assert_close(spikes[n_exc:] @ inh_cls(w_inh), mask[n_exc:] @ w_inh)
    default = be.vstack([exc_cls(w_exc), inh_cls(w_inh)])
    assert default.format == (exc_cls.format if exc_cls is inh_cls else 'coo')
    assert_close(spikes @ default, mask @ dense)


# ---------------------------------------------------------------------------
# coo2csr
# ---------------------------------------------------------------------------

def expected_indptr(row, m):
    return np.concatenate([[0], np.cumsum(np.bincount(row, minlength=m))])


@given(case=cases(max_dim=7))
@settings(max_examples=8)
def test_coo2csr(case):
    with precision(case.data.dtype):
        coo = case.coo()
        for csr in (be.coo2csr(coo),
                    be.coo2csr(case.row, case.col, coo.data if not coo.is_homogeneous
                               else case.data[0], shape=case.shape)):
            assert type(csr) is be.CSR
            assert csr.shape == case.shape
            assert csr.nnz == case.row.size  # duplicates kept
            assert csr.dtype == case.data.dtype
            np.testing.assert_array_equal(csr.indptr, expected_indptr(case.row, case.shape[0]))
            csr.check_format()
            np.testing.assert_allclose(np.asarray(csr.todense()), case.dense,
                                       rtol=1e-5, atol=1e-5)


def test_coo2csr_docstring_and_homogeneous():
    pre, post = jnp.array([2, 0, 0]), jnp.array([1, 1, 0])
    w = be.coo2csr(pre, post, 0.5, shape=(3, 2))
    assert w.is_homogeneous
    assert np.shape(w.data) == (1,)
    np.testing.assert_array_equal(w.indptr, [0, 2, 2, 3])
    assert_close(w.todense(), [[.5, .5], [0, 0], [0, .5]])
    # default weight 1.0, lists accepted, duplicates summed in products
    w = be.coo2csr([0, 0, 1], [1, 1, 0], shape=(2, 2))
    assert w.nnz == 3
    assert_close(w.todense(), [[0, 2], [1, 0]])
    assert_close(be.BinaryArray(jnp.array([True, True])) @ w, [1, 2])
    w = be.coo2csr(be.COO((0.25, (np.array([1, 0]), np.array([0, 1]))), shape=(2, 2)))
    assert w.is_homogeneous
    assert_close(w.todense(), [[0, .25], [.25, 0]])


# ---------------------------------------------------------------------------
# save_npz / load_npz
# ---------------------------------------------------------------------------

def assert_same_matrix(a, b):
    assert type(a) is type(b)
    assert a.shape == b.shape
    assert a.dtype == b.dtype
    assert a.nnz == b.nnz
    assert a.is_homogeneous == b.is_homogeneous
    assert a.unit == b.unit
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        x_m, y_m = u.get_mantissa(x), u.get_mantissa(y)
        np.testing.assert_array_equal(np.asarray(x_m), np.asarray(y_m))


@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
@pytest.mark.parametrize('compressed', [True, False])
def test_save_load_round_trip(cls, compressed, tmp_path):
    rng = np.random.default_rng(2)
    dense = random_dense(rng, (5, 4))
    path = tmp_path / 'w.npz'
    m = cls(dense)
    be.save_npz(path, m, compressed=compressed)
    back = be.load_npz(path)
    assert_same_matrix(back, m)
    assert_close(back.todense(), dense)
    # duplicates and unsorted entries survive
    dup = cls(be.COO((np.array([1., 2., 3.], np.float32),
                      (np.array([1, 0, 1]), np.array([2, 0, 2]))),
                     shape=(2, 3)))
    be.save_npz(str(path), dup)
    back = be.load_npz(str(path))
    assert_same_matrix(back, dup)
    assert_close(back.todense(), [[2, 0, 0], [0, 0, 4]])


@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
def test_save_load_homogeneous_and_units(cls, tmp_path):
    row, col = np.array([0, 2, 1, 2]), np.array([1, 0, 0, 2])
    m = be.COO((0.75, (row, col)), shape=(3, 3)).asformat(cls.format)
    assert m.is_homogeneous
    path = tmp_path / 'h.npz'
    be.save_npz(path, m)
    back = be.load_npz(path)
    assert_same_matrix(back, m)
    assert back.is_homogeneous
    assert_close(back.todense(), np.asarray(m.todense()))
    # scipy reads the homogeneous weights per entry
    s = sp.load_npz(path)
    assert s.nnz == 4
    assert_close(s.toarray(), np.asarray(m.todense()))
    # a unit is stored beside the arrays
    q = cls(random_dense(np.random.default_rng(3), (4, 3)))
    q = q.with_data(q.data * u.mV)
    be.save_npz(path, q)
    back = be.load_npz(path)
    assert_same_matrix(back, q)
    assert back.unit == u.mV
    assert_close(back.todense().to_decimal(u.mV), q.todense().to_decimal(u.mV))
    hq = m.with_data(0.5 * u.nS)
    be.save_npz(path, hq)
    back = be.load_npz(path)
    assert_same_matrix(back, hq)
    assert_close(back.todense().to_decimal(u.nS), 0.5 * (np.asarray(m.todense()) != 0))


@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
def test_scipy_reads_our_files(cls, tmp_path):
    dense = random_dense(np.random.default_rng(4), (6, 5))
    path = tmp_path / 'ours.npz'
    be.save_npz(path, cls(dense))
    s = sp.load_npz(path)
    assert s.format == cls.format
    assert s.shape == dense.shape
    assert_close(s.toarray(), dense)


@pytest.mark.parametrize('fmt', FORMAT_IDS)
@pytest.mark.parametrize('kind', ['matrix', 'array'])
@pytest.mark.parametrize('compressed', [True, False])
def test_we_read_scipy_files(fmt, kind, compressed, tmp_path):
    dense = random_dense(np.random.default_rng(5), (4, 7))
    maker = getattr(sp, f'{fmt}_{kind}')
    path = tmp_path / 'scipy.npz'
    sp.save_npz(path, maker(dense), compressed=compressed)
    m = be.load_npz(path)
    assert type(m) is be.formats._base.FORMATS[fmt]
    assert m.format == fmt
    assert m.shape == dense.shape
    assert m.unit.is_unitless
    assert not m.is_homogeneous
    assert_close(m.todense(), dense)


# ---------------------------------------------------------------------------
# random
# ---------------------------------------------------------------------------

@given(m=st.integers(0, 12), n=st.integers(0, 12), density=st.floats(0, 1),
       fmt=st.sampled_from(FORMAT_IDS), seed=st.integers(0, 2 ** 32 - 1))
@settings(max_examples=10)
def test_random(m, n, density, fmt, seed):
    r = be.random(m, n, density=density, format=fmt, seed=seed)
    assert r.format == fmt
    assert r.shape == (m, n)
    assert r.dtype == np.float32
    assert r.nnz == round(density * m * n)
    assert r.sum_duplicates().nnz == r.nnz  # distinct positions
    data = np.asarray(r.data)
    assert np.all((data >= 0) & (data < 1))
    r.check_format()
    again = be.random(m, n, density=density, format=fmt, seed=seed)
    for x, y in zip(jax.tree_util.tree_leaves(r), jax.tree_util.tree_leaves(again)):
        np.testing.assert_array_equal(x, y)


def test_random_dtype_seed_and_sampler():
    a = be.random(30, 20, density=0.3, format='csr', seed=1)
    b = be.random(30, 20, density=0.3, format='csr', seed=2)
    assert a.nnz == b.nnz == 180
    assert not np.array_equal(np.asarray(a.todense()), np.asarray(b.todense()))
    for dtype in (np.float32, np.float16):
        r = be.random(6, 7, density=0.5, format='csc', dtype=dtype, seed=0)
        assert type(r) is be.CSC and r.dtype == dtype and r.nnz == 21
    with precision(np.float64):
        r = be.random(6, 7, density=0.5, format='coo', dtype=np.float64, seed=0)
        assert type(r) is be.COO and r.dtype == np.float64 and r.nnz == 21
        r32 = be.random(6, 7, density=0.5, format='coo', dtype=np.float32, seed=0)
        np.testing.assert_allclose(np.asarray(r.todense()), np.asarray(r32.todense()), rtol=1e-6)
    r = be.random(5, 5, density=0.4, format='csr', seed=3,
                  data_sampler=lambda size: np.full(size, 2.0))
    assert r.nnz == 10
    np.testing.assert_array_equal(np.asarray(r.data), np.full(10, 2.0, np.float32))
    full = be.random(4, 3, density=1.0, seed=0)
    assert full.nnz == 12
    assert full.sum_duplicates().nnz == 12  # every cell
    empty = be.random(4, 3, density=0.0, seed=0)
    assert empty.nnz == 0
    np.testing.assert_array_equal(empty.todense(), np.zeros((4, 3)))
