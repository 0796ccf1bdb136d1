"""COO / CSR / CSC: constructors, attributes, conversions, arithmetic, reductions, pytrees.

Every check compares against a dense numpy reference (or scipy.sparse where the
question is "does it behave like scipy"). Products and transforms live in
test_products.py and bad-input errors in test_errors.py.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import brainevent as be
from strategies import FORMATS, Case, cases, dense_of, precision


FORMAT_IDS = [cls.format for cls in FORMATS]
SCIPY_CLASSES = {
    ('csr', 'matrix'): sp.csr_matrix, ('csr', 'array'): sp.csr_array,
    ('csc', 'matrix'): sp.csc_matrix, ('csc', 'array'): sp.csc_array,
    ('coo', 'matrix'): sp.coo_matrix, ('coo', 'array'): sp.coo_array,
}


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def tol(dtype):
    return dict(rtol=1e-5, atol=1e-4) if np.dtype(dtype) != np.float64 else \
        dict(rtol=1e-10, atol=1e-10)


def assert_close(actual, expected, dtype=None):
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    np.testing.assert_allclose(actual, expected, **tol(dtype or actual.dtype))


def weights(case: Case):
    """The data argument as a user would pass it (a scalar when homogeneous)."""
    return case.data[0] if case.data.size == 1 else case.data


def full_data(case: Case):
    return np.broadcast_to(case.data, case.row.shape).copy()


def compressed(case: Case, major: str):
    """(data, indices, indptr) of the case along ``major`` ('row' or 'col'), duplicates kept."""
    m, n = case.shape
    maj, mnr, extent = (case.row, case.col, m) if major == 'row' else (case.col, case.row, n)
    order = np.argsort(maj, kind='stable')
    indptr = np.concatenate([[0], np.cumsum(np.bincount(maj, minlength=extent))]).astype(np.int32)
    w = weights(case)
    data = w if np.ndim(w) == 0 else w[order]
    return data, mnr[order].astype(np.int32), indptr


def native(case: Case, cls):
    """Build ``cls`` from its own scipy-style tuple form."""
    if cls is be.COO:
        return be.COO((weights(case), (case.row, case.col)), shape=case.shape)
    return cls(compressed(case, 'row' if cls is be.CSR else 'col'), shape=case.shape)


def scipy_coo(case: Case):
    return sp.coo_array((full_data(case), (case.row, case.col)), shape=case.shape)


@st.composite
def same_shape_pairs(draw, max_dim=7):
    """Two cases of one shape and dtype (each may have duplicates / be homogeneous)."""
    a = draw(cases(max_dim=max_dim))
    m, n = a.shape
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31)))
    cells = m * n
    nnz = int(rng.integers(0, cells + 1)) if cells else 0
    flat = rng.choice(cells, size=nnz, replace=False) if nnz else np.zeros(0, int)
    if nnz and draw(st.booleans()):  # duplicates on the right operand too
        flat = np.concatenate([flat, rng.choice(flat, size=int(rng.integers(1, nnz + 1)))])
    rng.shuffle(flat)
    row = (flat // n).astype(np.int32) if n else flat.astype(np.int32)
    col = (flat % n).astype(np.int32) if n else flat.astype(np.int32)
    dtype = a.data.dtype
    if draw(st.booleans()) and row.size > 1:
        data = np.array([rng.uniform(-2, 2)], dtype)
    else:
        data = rng.uniform(-2, 2, size=row.size).astype(dtype)
    b = Case((m, n), row, col, data, dense_of((m, n), row, col, data))
    return a, b


def sample_matrix(cls, dtype=np.float32, duplicates=False, seed=0, shape=(5, 4)):
    rng = np.random.default_rng(seed)
    dense = np.where(rng.random(shape) < 0.45, rng.uniform(-2, 2, shape), 0).astype(dtype)
    if not duplicates:
        return cls(dense), dense
    row, col = np.nonzero(dense)
    data = dense[row, col]
    # split every entry into two halves stored twice
    row2, col2 = np.concatenate([row, row]), np.concatenate([col, col])
    data2 = np.concatenate([data / 2, data / 2]).astype(dtype)
    return cls(be.COO((data2, (row2, col2)), shape=shape)), dense


# ---------------------------------------------------------------------------
# constructors
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
@given(case=cases(max_dim=7))
@settings(max_examples=6)
def test_constructor_forms_agree_with_dense(cls, case):
    with precision(case.data.dtype):
        dtype = case.data.dtype
        built = {
            'native': native(case, cls),
            'from_coo_matrix': cls(case.coo()),
            'scipy': cls(scipy_coo(case)),
            'from_scipy': cls.from_scipy(scipy_coo(case)),
            'dense_numpy': cls(case.dense),
            'dense_jnp': cls(jnp.asarray(case.dense)),
            'fromdense': cls.fromdense(case.dense),
        }
        for other in FORMATS:
            built[f'from_{other.format}'] = cls(native(case, other))
        for name, m in built.items():
            assert type(m) is cls, name
            assert m.shape == case.shape, name
            assert m.format == cls.format, name
            assert m.ndim == 2, name
            assert m.dtype == dtype, name
            assert_close(m.todense(), case.dense, dtype)
            assert_close(m.toarray(), case.dense, dtype)
            m.check_format()
        # dense inputs store exactly the nonzeros
        assert built['dense_numpy'].nnz == np.count_nonzero(case.dense)
        assert built['fromdense'].nnz == np.count_nonzero(case.dense)
        # the tuple form keeps every entry (duplicates included)
        assert built['native'].nnz == case.row.size


@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
@pytest.mark.parametrize('src', ['csr', 'csc', 'coo'])
@pytest.mark.parametrize('kind', ['matrix', 'array'])
def test_constructor_from_scipy_kinds(cls, src, kind):
    rng = np.random.default_rng(3)
    dense = np.where(rng.random((6, 5)) < 0.4, rng.uniform(-1, 1, (6, 5)), 0).astype(np.float32)
    s = SCIPY_CLASSES[(src, kind)](dense)
    for m in (cls(s), cls.from_scipy(s)):
        assert type(m) is cls
        assert m.shape == s.shape
        assert m.nnz == s.nnz
        assert m.dtype == np.float32
        assert_close(m.todense(), dense)


def test_constructor_from_scipy_keeps_attributes():
    rng = np.random.default_rng(4)
    dense = np.where(rng.random((6, 5)) < 0.4, rng.uniform(-1, 1, (6, 5)), 0).astype(np.float32)
    csr, csc, coo = sp.csr_array(dense), sp.csc_array(dense), sp.coo_array(dense)
    m = be.CSR(csr)
    np.testing.assert_array_equal(m.indices, csr.indices)
    np.testing.assert_array_equal(m.indptr, csr.indptr)
    np.testing.assert_array_equal(m.data, csr.data)
    m = be.CSC(csc)
    np.testing.assert_array_equal(m.indices, csc.indices)
    np.testing.assert_array_equal(m.indptr, csc.indptr)
    np.testing.assert_array_equal(m.data, csc.data)
    m = be.COO(coo)
    np.testing.assert_array_equal(m.row, coo.row)
    np.testing.assert_array_equal(m.col, coo.col)
    np.testing.assert_array_equal(m.data, coo.data)


def test_from_scipy_coo_keeps_duplicates():
    s = sp.coo_array((np.array([1., 2., 4.], np.float32),
                      (np.array([1, 0, 1]), np.array([2, 0, 2]))),
                     shape=(2, 3))
    m = be.COO(s)
    assert m.nnz == 3
    np.testing.assert_array_equal(m.row, [1, 0, 1])
    np.testing.assert_array_equal(m.col, [2, 0, 2])
    assert_close(m.todense(), [[2., 0., 0.], [0., 0., 5.]])


@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
@pytest.mark.parametrize('dtype', [np.float32, np.float64, np.int32, np.float16])
@pytest.mark.parametrize('shape', [(3, 4), (0, 2), (2, 0), (1, 1)])
def test_constructor_empty_shape(cls, dtype, shape):
    with precision(dtype):
        m = cls(shape, dtype=dtype)
        assert type(m) is cls
        assert m.shape == shape
        assert m.nnz == 0
        assert m.dtype == dtype
        dense = m.todense()
        assert dense.dtype == dtype
        np.testing.assert_array_equal(dense, np.zeros(shape, dtype))
        m.check_format()
        if cls is not be.COO:
            major = shape[0] if cls is be.CSR else shape[1]
            np.testing.assert_array_equal(m.indptr, np.zeros(major + 1))


@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
@pytest.mark.parametrize('dtype', [np.float16, np.int32, np.float32])
def test_dtype_argument(cls, dtype):
    dense = np.array([[0., 1.5, 0.], [2., 0., -3.]], np.float32)
    expected = dense.astype(dtype)
    s = sp.csr_array(dense)
    row, col = np.nonzero(dense)
    forms = [cls(dense, dtype=dtype), cls(jnp.asarray(dense), dtype=dtype), cls(s, dtype=dtype),
             cls(be.COO(dense), dtype=dtype),
             be.COO((dense[row, col], (row, col)), shape=(2, 3), dtype=dtype).asformat(cls.format),
             be.CSR((s.data, s.indices, s.indptr), shape=(2, 3), dtype=dtype).asformat(cls.format)]
    for m in forms:
        assert type(m) is cls
        assert m.dtype == dtype
        assert m.todense().dtype == dtype
        np.testing.assert_array_equal(m.todense(), expected)
    c = sp.csc_array(dense)
    m = be.CSC((c.data, c.indices, c.indptr), shape=(2, 3), dtype=dtype)
    assert m.dtype == dtype
    np.testing.assert_array_equal(m.todense(), expected)


@given(case=cases(allow_homogeneous=False))
@settings(max_examples=8)
def test_shape_inference_matches_scipy(case):
    if case.row.size == 0:
        return
    with precision(case.data.dtype):
        coo = be.COO((case.data, (case.row, case.col)))
        ref = sp.coo_array((case.data, (case.row, case.col)))
        assert coo.shape == ref.shape
        assert_close(coo.todense(), ref.toarray())
        data, indices, indptr = compressed(case, 'row')
        csr = be.CSR((data, indices, indptr))
        ref = sp.csr_array((data, indices, indptr))
        assert csr.shape == ref.shape
        assert_close(csr.todense(), ref.toarray())
        data, indices, indptr = compressed(case, 'col')
        csc = be.CSC((data, indices, indptr))
        ref = sp.csc_array((data, indices, indptr))
        assert csc.shape == ref.shape
        assert_close(csc.todense(), ref.toarray())


@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
@given(case=cases(max_dim=6), extra=st.integers(-3, 3))
@settings(max_examples=8)
def test_fromdense_nse_inside_jit(cls, case, extra):
    with precision(case.data.dtype):
        count = int(np.count_nonzero(case.dense))
        # padding entries are explicit zeros at (0, 0), which an empty matrix lacks
        nse = max(0, count + extra) if case.dense.size else 0
        m = jax.jit(lambda x: cls.fromdense(x, nse=nse))(jnp.asarray(case.dense))
        assert type(m) is cls
        assert m.nnz == nse
        assert m.shape == case.shape
        # with fewer slots than nonzeros the first nse in row-major order are kept
        r, c = np.nonzero(case.dense)
        expected = np.zeros_like(case.dense)
        keep = slice(0, min(nse, count))
        expected[r[keep], c[keep]] = case.dense[r[keep], c[keep]]
        assert_close(m.todense(), expected, case.data.dtype)


@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
@given(case=cases())
@settings(max_examples=8)
def test_to_scipy(cls, case):
    with precision(case.data.dtype):
        m = native(case, cls)
        s = m.to_scipy()
        assert isinstance(s, sp.sparray)  # a scipy sparse array, as documented
        assert s.format == cls.format
        assert s.shape == case.shape
        assert s.dtype == case.data.dtype
        assert_close(s.toarray(), case.dense)
        if cls is not be.COO:
            np.testing.assert_array_equal(s.indices, m.indices)
            np.testing.assert_array_equal(s.indptr, m.indptr)
        # and back again
        assert_close(cls(s).todense(), case.dense)


# ---------------------------------------------------------------------------
# attributes, homogeneous weights
# ---------------------------------------------------------------------------

def test_attributes():
    dense = np.array([[0., 1., 0., 2.], [0., 0., 0., 0.], [3., 0., 4., 0.]], np.float32)
    csr = be.CSR(dense)
    assert (csr.shape, csr.dtype, csr.nnz, csr.ndim, csr.format) == \
        ((3, 4), np.float32, 4, 2, 'csr')
    np.testing.assert_array_equal(csr.data, [1., 2., 3., 4.])
    np.testing.assert_array_equal(csr.indices, [1, 3, 0, 2])
    np.testing.assert_array_equal(csr.indptr, [0, 2, 2, 4])
    csc = be.CSC(dense)
    assert (csc.shape, csc.dtype, csc.nnz, csc.ndim, csc.format) == \
        ((3, 4), np.float32, 4, 2, 'csc')
    np.testing.assert_array_equal(csc.data, [3., 1., 4., 2.])
    np.testing.assert_array_equal(csc.indices, [2, 0, 2, 0])
    np.testing.assert_array_equal(csc.indptr, [0, 1, 2, 3, 4])
    coo = be.COO(dense)
    assert (coo.shape, coo.dtype, coo.nnz, coo.ndim, coo.format) == \
        ((3, 4), np.float32, 4, 2, 'coo')
    np.testing.assert_array_equal(coo.data, [1., 2., 3., 4.])
    np.testing.assert_array_equal(coo.row, [0, 0, 2, 2])
    np.testing.assert_array_equal(coo.col, [1, 3, 0, 2])
    for m in (csr, csc, coo):
        assert not m.is_homogeneous


@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
def test_homogeneous_weights(cls):
    row = np.array([0, 2, 2, 1, 0], np.int32)
    col = np.array([1, 0, 3, 3, 1], np.int32)  # (0, 1) twice
    expected = dense_of((3, 4), row, col, np.float32(0.5))
    if cls is be.COO:
        m = be.COO((0.5, (row, col)), shape=(3, 4))
    else:
        case = Case((3, 4), row, col, np.array([0.5], np.float32), expected)
        _, indices, indptr = compressed(case, 'row' if cls is be.CSR else 'col')
        m = cls((0.5, indices, indptr), shape=(3, 4))
    assert m.is_homogeneous
    assert m.nnz == 5
    assert np.shape(m.data) == (1,)
    assert_close(m.todense(), expected)
    assert_close(m.full_data(), np.full(5, 0.5))
    # conversions, transposes and the jnp-scalar form keep the values
    for fmt in FORMAT_IDS:
        assert_close(m.asformat(fmt).todense(), expected)
    assert_close(m.T.todense(), expected.T)
    assert_close(m.with_data(jnp.float32(2.0)).todense(), expected * 4)
    assert m.with_data(jnp.float32(2.0)).is_homogeneous
    s = m.to_scipy()
    assert s.nnz == 5
    assert_close(s.toarray(), expected)


# ---------------------------------------------------------------------------
# conversions and transposes
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('src', FORMATS, ids=FORMAT_IDS)
@given(case=cases(max_dim=7))
@settings(max_examples=6)
def test_conversion_round_trips(src, case):
    with precision(case.data.dtype):
        dtype = case.data.dtype
        m = native(case, src)
        assert_close(m.todense(), case.dense, dtype)
        assert_close(m.toarray(), case.dense, dtype)
        by_name = {'coo': m.tocoo(), 'csr': m.tocsr(), 'csc': m.tocsc()}
        for dst in FORMATS:
            for converted in (m.asformat(dst.format), by_name[dst.format]):
                assert type(converted) is dst
                assert converted.shape == case.shape
                assert converted.dtype == dtype
                converted.check_format()
                assert_close(converted.todense(), case.dense, dtype)
                back = converted.asformat(src.format)
                assert type(back) is src
                assert_close(back.todense(), case.dense, dtype)
        assert m.asformat(None) is m
        assert m.asformat(src.format) is m


@pytest.mark.parametrize('src', FORMATS, ids=FORMAT_IDS)
@given(case=cases(max_dim=6))
@settings(max_examples=6)
def test_conversions_inside_jit(src, case):
    with precision(case.data.dtype):
        m = native(case, src)
        out = jax.jit(lambda x: (x.tocoo(), x.tocsr(), x.tocsc(), x.todense(), x.T))(m)
        for res, cls in zip(out[:3], FORMATS):
            assert type(res) is cls
            assert_close(res.todense(), case.dense)
        assert_close(out[3], case.dense)
        assert_close(out[4].todense(), case.dense.T)


@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
@given(case=cases())
@settings(max_examples=8)
def test_transpose(cls, case):
    with precision(case.data.dtype):
        m = native(case, cls)
        expected_type = {be.CSR: be.CSC, be.CSC: be.CSR, be.COO: be.COO}[cls]
        for t in (m.T, m.transpose(), m.transpose((1, 0))):
            assert type(t) is expected_type
            assert t.shape == case.shape[::-1]
            assert_close(t.todense(), case.dense.T)
            assert_close(t.T.todense(), case.dense)
        if cls is not be.COO:  # a view of the same arrays
            assert m.T.indices is m.indices
            assert m.T.indptr is m.indptr
            assert m.T.data is m.data
        else:
            assert m.T.row is m.col and m.T.col is m.row


@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
def test_astype_copy_with_data(cls):
    m, dense = sample_matrix(cls)
    for dtype in (np.int32, np.float16, np.float32):
        a = m.astype(dtype)
        assert type(a) is cls
        assert a.dtype == dtype
        np.testing.assert_array_equal(a.todense(), jnp.asarray(dense).astype(dtype))
    with precision(np.float64):
        a = m.astype(np.float64)
        assert a.dtype == np.float64
        assert_close(a.todense(), dense.astype(np.float64), np.float32)
    c = m.copy()
    assert type(c) is cls and c is not m
    assert c.shape == m.shape and c.nnz == m.nnz
    assert_close(c.todense(), dense)
    for x, y in zip(jax.tree_util.tree_leaves(c), jax.tree_util.tree_leaves(m)):
        np.testing.assert_array_equal(x, y)
    new = jnp.arange(m.nnz, dtype=jnp.float32) + 1
    w = m.with_data(new)
    assert type(w) is cls and w.nnz == m.nnz
    coo = m.tocoo()
    assert_close(w.tocoo().todense(), dense_of(dense.shape, np.asarray(coo.row),
                                               np.asarray(coo.col), np.asarray(new)))
    h = m.with_data(3.0)
    assert h.is_homogeneous
    assert_close(h.todense(), (dense != 0) * 3.0)
    # the original is unchanged
    assert_close(m.todense(), dense)


# ---------------------------------------------------------------------------
# arithmetic
# ---------------------------------------------------------------------------

def _arithmetic(x, y, dense_b, dense_b2):
    return (-x, x * 2.5, 2.5 * x, x / 2.5, x + y, x - y, x.multiply(y), x * y,
            x.multiply(dense_b), x * dense_b2, x + dense_b)


def _check_arithmetic(cls_a, a, b, dense_b, results):
    dtype = a.data.dtype
    expected = [-a.dense, a.dense * 2.5, 2.5 * a.dense, a.dense / 2.5,
                a.dense + b.dense, a.dense - b.dense, a.dense * b.dense, a.dense * b.dense,
                a.dense * dense_b, a.dense * dense_b]
    for i, (res, exp) in enumerate(zip(results[:-1], expected)):
        assert type(res) is cls_a, i
        assert res.shape == a.shape, i
        assert res.dtype == dtype, i
        assert_close(res.todense(), exp, dtype)
    # sparse + dense is dense, as in scipy
    assert_close(results[-1], a.dense + dense_b, dtype)


@pytest.mark.parametrize('cls_a', FORMATS, ids=FORMAT_IDS)
@given(pair=same_shape_pairs(max_dim=6))
@settings(max_examples=6)
def test_arithmetic_like_scipy(cls_a, pair):
    a, b = pair
    with precision(a.data.dtype):
        dense_b = np.arange(a.dense.size, dtype=a.data.dtype).reshape(a.shape) - 3
        x = native(a, cls_a)
        for cls_b in FORMATS:  # duplicates on either side, every format on the right
            y = native(b, cls_b)
            # dense operands: a numpy array and a JAX array
            _check_arithmetic(cls_a, a, b, dense_b,
                              _arithmetic(x, y, dense_b, jnp.asarray(dense_b)))


@pytest.mark.parametrize('cls_a', FORMATS, ids=FORMAT_IDS)
@given(pair=same_shape_pairs(max_dim=5))
@settings(max_examples=3)
def test_arithmetic_inside_jit(cls_a, pair):
    a, b = pair
    with precision(a.data.dtype):
        dense_b = np.arange(a.dense.size, dtype=a.data.dtype).reshape(a.shape) - 3
        x = native(a, cls_a)
        for cls_b in FORMATS:
            y = native(b, cls_b)
            _check_arithmetic(cls_a, a, b, dense_b, jax.jit(_arithmetic)(x, y, dense_b, dense_b))


# No shrinking: the deterministic test below is the minimal example, and shrinking
# a failure here would cost minutes of recompilation.
@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
@given(case=cases(max_dim=6))
@settings(max_examples=6, phases=(Phase.explicit, Phase.reuse, Phase.generate))
def test_abs_is_absolute_value_of_matrix(cls, case):
    # scipy sums duplicates before abs(): abs(x) is |x| of the matrix x represents
    if case.row.size and case.data.size > 1:  # add a duplicate of opposite sign
        data = np.concatenate([case.data, -2 * case.data[:1]])
        row, col = np.append(case.row, case.row[0]), np.append(case.col, case.col[0])
        case = Case(case.shape, row, col, data, dense_of(case.shape, row, col, data))
    with precision(case.data.dtype):
        x = native(case, cls)
        ref = abs(scipy_coo(case).asformat(cls.format)).toarray()
        assert_close(ref, np.abs(case.dense), case.data.dtype)
        r = abs(x)
        assert type(r) is cls
        assert_close(r.todense(), np.abs(case.dense), case.data.dtype)
        r = jax.jit(abs)(x)
        assert_close(r.todense(), np.abs(case.dense), case.data.dtype)


@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
def test_abs_with_cancelling_duplicates(cls):
    # scipy sums duplicates before abs(): abs(x) is the absolute value of the matrix
    coo = be.COO((np.array([1., -3., 2.], np.float32), (np.array([0, 0, 1]), np.array([0, 0, 1]))),
                 shape=(2, 2))
    x = cls(coo)
    ref = abs(sp.coo_array((np.array([1., -3., 2.]), (np.array([0, 0, 1]), np.array([0, 0, 1]))),
                           shape=(2, 2))).toarray()
    assert_close(ref, [[2., 0.], [0., 2.]])
    assert_close(abs(x).todense(), ref)


@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
def test_multiply_with_duplicates_on_both_sides(cls):
    row = np.array([0, 0, 1, 2, 2], np.int32)
    col = np.array([1, 1, 0, 2, 2], np.int32)
    a = be.COO((np.array([1., 2., 3., 4., 5.], np.float32), (row, col)), shape=(3, 3))
    b = be.COO((np.array([10., -1., 7., 0.5], np.float32),
                (np.array([0, 0, 2, 1]), np.array([1, 1, 2, 1]))), shape=(3, 3))
    da, db = np.asarray(a.todense()), np.asarray(b.todense())
    for other in FORMATS:
        r = cls(a).multiply(other(b))
        assert type(r) is cls
        assert_close(r.todense(), da * db)
        assert_close((cls(a) * other(b)).todense(), da * db)
        assert_close((cls(a) + other(b)).todense(), da + db)
        assert_close((cls(a) - other(b)).todense(), da - db)


@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
def test_multiply_broadcasts_dense_like_scipy(cls):
    m, dense = sample_matrix(cls, duplicates=True)
    s = sp.csr_array(dense)
    row = np.arange(1, 5, dtype=np.float32)
    col = np.arange(1, 6, dtype=np.float32)[:, None]
    for other in (row, col, row[None, :], jnp.asarray(row), np.float32(3), jnp.float32(3)):
        r = m.multiply(other)
        assert type(r) is cls
        assert_close(r.todense(), np.asarray(s.multiply(np.asarray(other)).toarray()))
        assert_close(r.todense(), dense * np.asarray(other))


@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
def test_dense_mixing_and_zero_addition(cls):
    m, dense = sample_matrix(cls)
    other = np.arange(dense.size, dtype=np.float32).reshape(dense.shape)
    for res, exp in ((m + other, dense + other), (other + m, other + dense),
                     (m - other, dense - other), (other - m, other - dense),
                     (jnp.asarray(other) - m, other - dense),
                     (m + jnp.asarray(other), dense + other)):
        assert isinstance(res, (jax.Array, np.ndarray)), type(res)
        assert_close(res, exp)
    # adding zero keeps the sparse matrix (so sum() over a list works)
    assert type(m + 0) is cls
    assert_close((m + 0).todense(), dense)
    total = sum([m, m, m])
    assert type(total) is cls
    assert_close(total.todense(), 3 * dense)
    assert_close((+m).todense(), dense)


@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
def test_bool_weights(cls):
    # bool weights are accepted ("data must be numeric or bool"), as scipy accepts a bool mask
    mask = np.array([[True, False, True], [False, False, True]])
    ref = sp.csr_array(mask).asformat(cls.format)
    m = cls(mask)
    assert m.dtype == np.bool_
    assert m.nnz == ref.nnz == 3
    np.testing.assert_array_equal(np.asarray(m.todense()), ref.toarray())
    f = cls(mask.astype(np.float32)).astype(bool)
    assert f.dtype == np.bool_
    np.testing.assert_array_equal(np.asarray(f.todense()), mask)


# ---------------------------------------------------------------------------
# reductions and structure
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
@given(case=cases(max_dim=6))
@settings(max_examples=6)
def test_sum_and_diagonal(cls, case):
    with precision(case.data.dtype):
        dtype = case.data.dtype
        m = native(case, cls)
        assert_close(m.sum(), case.dense.sum(), dtype)
        assert_close(m.sum(axis=0), case.dense.sum(axis=0), dtype)
        assert_close(m.sum(axis=1), case.dense.sum(axis=1), dtype)
        assert_close(m.sum(axis=-1), case.dense.sum(axis=1), dtype)
        rows, cols = case.shape
        ref = scipy_coo(case).asformat(cls.format)
        for k in range(-rows - 2, cols + 3):
            d = m.diagonal(k)
            assert_close(d, np.diagonal(case.dense, k), dtype)
            assert_close(d, ref.diagonal(k), dtype)
        assert_close(m.diagonal(), np.diagonal(case.dense), dtype)


def _canonical(m):
    """(major, minor) coordinates in the format's natural order."""
    coo = m.tocoo()
    r, c = np.asarray(coo.row), np.asarray(coo.col)
    if m.format == 'csc':
        return c, r
    return r, c


@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
@given(case=cases())
@settings(max_examples=10)
def test_sum_duplicates(cls, case):
    with precision(case.data.dtype):
        m = native(case, cls)
        s = m.sum_duplicates()
        assert type(s) is cls
        distinct = len(set(zip(case.row.tolist(), case.col.tolist())))
        assert s.nnz == distinct
        assert_close(s.todense(), case.dense, case.data.dtype)
        major, minor = _canonical(s)
        keys = list(zip(major.tolist(), minor.tolist()))
        assert keys == sorted(set(keys))  # strictly increasing: sorted, no duplicates
        s.check_format()
        ref = scipy_coo(case).asformat(cls.format)
        ref.sum_duplicates()
        if cls is not be.COO:
            np.testing.assert_array_equal(s.indptr, ref.indptr)
            np.testing.assert_array_equal(s.indices, ref.indices)
        assert_close(s.full_data(), ref.data, case.data.dtype)


@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
@given(case=cases(allow_homogeneous=False))
@settings(max_examples=8)
def test_eliminate_zeros(cls, case):
    with precision(case.data.dtype):
        data = case.data.copy()
        data[::2] = 0  # explicit zeros
        z = Case(case.shape, case.row, case.col, data,
                 dense_of(case.shape, case.row, case.col, data))
        m = native(z, cls)
        e = m.eliminate_zeros()
        assert type(e) is cls
        assert e.nnz == int(np.count_nonzero(data))
        assert np.all(np.asarray(e.full_data()) != 0)
        assert_close(e.todense(), z.dense, data.dtype)
        e.check_format()
        ref = scipy_coo(z)  # scipy's COO keeps duplicates, as the input does
        ref.eliminate_zeros()
        assert e.nnz == ref.nnz


@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
def test_eliminate_zeros_homogeneous(cls):
    row, col = np.array([0, 1, 2]), np.array([2, 1, 0])
    m = be.COO((0.0, (row, col)), shape=(3, 3)).asformat(cls.format)
    e = m.eliminate_zeros()
    assert e.nnz == 0
    assert_close(e.todense(), np.zeros((3, 3)))
    m = be.COO((1.5, (row, col)), shape=(3, 3)).asformat(cls.format)
    e = m.eliminate_zeros()
    assert e.nnz == 3
    assert_close(e.todense(), np.fliplr(np.eye(3)) * 1.5)


@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
@given(case=cases())
@settings(max_examples=8)
def test_sort_indices(cls, case):
    with precision(case.data.dtype):
        m = native(case, cls)
        s = m.sort_indices()
        assert type(s) is cls
        assert s.nnz == m.nnz  # duplicates are kept
        assert_close(s.todense(), case.dense, case.data.dtype)
        major, minor = _canonical(s)
        keys = list(zip(major.tolist(), minor.tolist()))
        assert keys == sorted(keys)
        s.check_format()
        j = jax.jit(lambda x: x.sort_indices())(m)
        assert_close(j.todense(), case.dense, case.data.dtype)


@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
@given(case=cases())
@settings(max_examples=6)
def test_check_format_passes_on_valid(cls, case):
    with precision(case.data.dtype):
        m = native(case, cls)
        assert m.check_format() is None
        assert m.check_format(full_check=False) is None
        assert m.T.check_format() is None
        assert_close(m.todense(), case.dense, case.data.dtype)


# ---------------------------------------------------------------------------
# pytrees
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
def test_pytree_leaves_and_static_shape(cls):
    m, dense = sample_matrix(cls)
    leaves, treedef = jax.tree_util.tree_flatten(m)
    assert len(leaves) == 3
    if cls is be.COO:
        expected = [m.data, m.row, m.col]
    else:
        expected = [m.data, m.indices, m.indptr]
    for leaf, arr in zip(leaves, expected):
        assert leaf is arr
    back = jax.tree_util.tree_unflatten(treedef, leaves)
    assert type(back) is cls and back.shape == m.shape
    assert_close(back.todense(), dense)
    # shape is aux data: matrices of another shape have another structure
    other = cls(np.ones((2, 2), np.float32))
    assert jax.tree_util.tree_structure(other) != treedef
    assert jax.tree_util.tree_structure(cls(dense.copy())) == treedef
    doubled = jax.tree_util.tree_map(lambda x: x * 2 if x.dtype.kind == 'f' else x, m)
    assert_close(doubled.todense(), dense * 2)


@pytest.mark.parametrize('cls', FORMATS, ids=FORMAT_IDS)
def test_jit_traces_once_for_equal_matrices(cls):
    traces = []

    @jax.jit
    def f(mat, x):
        traces.append(1)
        return mat.todense() @ x, mat.sum(axis=0)

    dense = np.array([[0., 1., 2.], [3., 0., 0.], [0., 0., 4.]], np.float32)
    x = jnp.arange(3.0)
    a = cls(dense)
    b = cls(np.array(dense))  # equal, built separately
    assert a is not b
    for m in (a, b):
        y, s = f(m, x)
        assert_close(y, dense @ np.arange(3.0))
        assert_close(s, dense.sum(0))
    assert len(traces) == 1
    # new weights on the same structure reuse the trace too
    y, _ = f(a.with_data(a.data * 2), x)
    assert_close(y, 2 * dense @ np.arange(3.0))
    assert len(traces) == 1


def test_matrices_built_inside_jit():
    dense = np.array([[0., 1., 2.], [3., 0., 0.]], np.float32)
    s = sp.csr_array(dense)

    @jax.jit
    def build(data, indices, indptr, row, col):
        csr = be.CSR((data, indices, indptr), shape=(2, 3))
        csc = be.CSC((data, indices, indptr), shape=(3, 2))
        coo = be.COO((data, (row, col)), shape=(2, 3))
        return csr, csc, coo, csr.todense() + coo.todense()

    coo = s.tocoo()
    csr, csc, coo_m, total = build(s.data, s.indices, s.indptr, coo.row, coo.col)
    assert type(csr) is be.CSR and type(csc) is be.CSC and type(coo_m) is be.COO
    assert_close(csr.todense(), dense)
    assert_close(csc.todense(), dense.T)
    assert_close(coo_m.todense(), dense)
    assert_close(total, 2 * dense)
