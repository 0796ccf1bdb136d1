"""Bad input raises a clear ValueError/TypeError that names the argument, the
expected value and the received one (never an ``assert`` or a bare error from
deep inside JAX or numpy).

Every ``match`` below is built with :func:`msg`, which requires each given
fragment to appear somewhere in the message (in any order).
"""

import re

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainevent as be

FORMATS = [be.COO, be.CSR, be.CSC]
COMPRESSED = [be.CSR, be.CSC]
DENSE = np.array([[1., 0., 2.], [0., 3., 0.]], np.float32)  # shape (2, 3), nnz 3


def msg(*fragments, patterns=()):
    """A regex that matches when every literal fragment and every regex pattern occurs."""
    parts = [re.escape(f) for f in fragments] + [f'(?:{p})' for p in patterns]
    return '(?s)' + ''.join(f'(?=.*{p})' for p in parts)


def ids(cls):
    return cls.__name__


def matrix(cls, dense=DENSE):
    return cls(jnp.asarray(dense))


# ---------------------------------------------------------------------------
# 1. indptr length
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('extra', [-1, 1, 3])
def test_csr_indptr_length(extra):
    data, indices = jnp.ones(2), jnp.array([0, 2])
    indptr = jnp.arange(2 + 1 + extra).clip(0, 2)  # shape (2, 3) needs 3 entries
    n = indptr.shape[0]
    with pytest.raises(ValueError, match=msg('indptr', f'length {n}', 'shape[0] + 1', '= 3')):
        be.CSR((data, indices, indptr), shape=(2, 3))


@pytest.mark.parametrize('extra', [-1, 1, 3])
def test_csc_indptr_length(extra):
    data, indices = jnp.ones(2), jnp.array([0, 1])
    indptr = jnp.arange(4 + extra).clip(0, 2)  # shape (2, 3) needs shape[1] + 1 = 4 entries
    n = indptr.shape[0]
    with pytest.raises(ValueError, match=msg('indptr', f'length {n}', 'shape[1] + 1', '= 4')):
        be.CSC((data, indices, indptr), shape=(2, 3))


@pytest.mark.parametrize('cls', COMPRESSED, ids=ids)
def test_indptr_length_check_format_after_unflatten(cls):
    m = matrix(cls)
    leaves, treedef = jax.tree_util.tree_flatten(m)
    bad = jax.tree_util.tree_unflatten(treedef, [leaves[0], leaves[1], leaves[2][:-1]])
    major = 'shape[0] + 1' if cls is be.CSR else 'shape[1] + 1'
    expected = (m.shape[0] if cls is be.CSR else m.shape[1]) + 1
    with pytest.raises(ValueError, match=msg('indptr', f'length {expected - 1}', major,
                                             f'= {expected}')):
        bad.check_format()


@pytest.mark.parametrize('cls', COMPRESSED, ids=ids)
def test_indptr_2d(cls):
    with pytest.raises(ValueError, match=msg('indptr', '1-D', '(1, 3)')):
        cls((jnp.ones(2), jnp.array([0, 1]), jnp.array([[0, 1, 2]])), shape=(2, 2))


@pytest.mark.parametrize('cls', COMPRESSED, ids=ids)
def test_indices_2d(cls):
    with pytest.raises(ValueError, match=msg('indices', '1-D', '(2, 1)')):
        cls((jnp.ones(2), jnp.array([[0], [1]]), jnp.array([0, 1, 2])), shape=(2, 2))


# ---------------------------------------------------------------------------
# 2. indices out of range (check_format)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('bad', [3, 7, -1, -5])
def test_csr_indices_out_of_range(bad):
    m = be.CSR((jnp.ones(2), jnp.array([0, bad]), jnp.array([0, 1, 2])), shape=(2, 3))
    with pytest.raises(ValueError, match=msg('indices', f'contains {bad}', '[0, 3)')):
        m.check_format()


@pytest.mark.parametrize('bad', [2, 9, -1, -4])
def test_csc_indices_out_of_range(bad):
    # CSC of shape (2, 3): indices are row indices, in [0, 2).
    m = be.CSC((jnp.ones(2), jnp.array([bad, 0]), jnp.array([0, 1, 2, 2])), shape=(2, 3))
    with pytest.raises(ValueError, match=msg('indices', f'contains {bad}', '[0, 2)')):
        m.check_format()


@pytest.mark.parametrize('bad', [2, 5, -1, -3])
def test_coo_row_out_of_range(bad):
    m = be.COO((jnp.ones(2), (jnp.array([0, bad]), jnp.array([0, 1]))), shape=(2, 3))
    with pytest.raises(ValueError, match=msg('row', f'contains {bad}', '[0, 2)')):
        m.check_format()


@pytest.mark.parametrize('bad', [3, 5, -1, -3])
def test_coo_col_out_of_range(bad):
    m = be.COO((jnp.ones(2), (jnp.array([0, 1]), jnp.array([bad, 1]))), shape=(2, 3))
    with pytest.raises(ValueError, match=msg('col', f'contains {bad}', '[0, 3)')):
        m.check_format()


@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_check_format_accepts_valid(cls):
    matrix(cls).check_format()  # the error tests above are not vacuous


# ---------------------------------------------------------------------------
# 3. indptr content (check_format)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('cls', COMPRESSED, ids=ids)
def test_indptr_not_monotone(cls):
    # major extent 3, nnz 3; indptr drops from 2 to 1 at position 2
    m = cls((jnp.ones(3), jnp.array([0, 1, 0]), jnp.array([0, 2, 1, 3])),
            shape=(3, 2) if cls is be.CSR else (2, 3))
    with pytest.raises(ValueError, match=msg('indptr', 'non-decreasing', 'indptr[2] = 1',
                                             'indptr[1] = 2')):
        m.check_format()


@pytest.mark.parametrize('cls', COMPRESSED, ids=ids)
def test_indptr_first_not_zero(cls):
    m = cls((jnp.ones(2), jnp.array([0, 1]), jnp.array([1, 1, 2])), shape=(2, 2))
    with pytest.raises(ValueError, match=msg('indptr[0]', 'is 1', 'expected 0')):
        m.check_format()


@pytest.mark.parametrize('last', [1, 5])
@pytest.mark.parametrize('cls', COMPRESSED, ids=ids)
def test_indptr_last_not_nnz(cls, last):
    m = cls((jnp.ones(2), jnp.array([0, 1]), jnp.array([0, 1, last])), shape=(2, 2))
    with pytest.raises(ValueError, match=msg('indptr[-1]', f'is {last}', 'nnz = 2')):
        m.check_format()


# ---------------------------------------------------------------------------
# 4. shape mismatch in @
# ---------------------------------------------------------------------------

def _right_operands():
    """Right operands for a (2, 3) matrix whose first dimension is 4 (should be 3)."""
    x1 = np.array([1., 0., 1., 1.], np.float32)
    x2 = np.ones((4, 2), np.float32)
    return {
        'jax-1d': (jnp.asarray(x1), (4,)),
        'jax-2d': (jnp.asarray(x2), (4, 2)),
        'numpy-1d': (x1, (4,)),
        'numpy-2d': (x2, (4, 2)),
        'binary-1d': (be.BinaryArray(jnp.asarray(x1)), (4,)),
        'binary-2d': (be.BinaryArray(jnp.asarray(x2)), (4, 2)),
        'indexed-1d': (be.IndexedBinary1d.from_dense(jnp.asarray(x1)), (4,)),
    }


def _left_operands():
    """Left operands for a (2, 3) matrix whose last dimension is 4 (should be 2)."""
    x1 = np.array([1., 0., 1., 1.], np.float32)
    x2 = np.ones((3, 4), np.float32)
    return {
        'jax-1d': (jnp.asarray(x1), (4,)),
        'jax-2d': (jnp.asarray(x2), (3, 4)),
        'numpy-1d': (x1, (4,)),
        'numpy-2d': (x2, (3, 4)),
        'binary-1d': (be.BinaryArray(jnp.asarray(x1)), (4,)),
        'binary-2d': (be.BinaryArray(jnp.asarray(x2)), (3, 4)),
        'indexed-1d': (be.IndexedBinary1d.from_dense(jnp.asarray(x1)), (4,)),
        'indexed-2d': (be.IndexedBinary2d.from_dense(jnp.asarray(x2)), (3, 4)),
    }


RIGHT = list(_right_operands())
LEFT = list(_left_operands())


@pytest.mark.parametrize('kind', RIGHT)
@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_matmul_right_operand_mismatch(cls, kind):
    operand, shape = _right_operands()[kind]
    with pytest.raises(ValueError, match=msg('right operand', str(shape), 'must equal 3',
                                             '(2, 3)')):
        matrix(cls) @ operand


@pytest.mark.parametrize('kind', LEFT)
@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_matmul_left_operand_mismatch(cls, kind):
    operand, shape = _left_operands()[kind]
    with pytest.raises(ValueError, match=msg('left operand', str(shape), 'must equal 2',
                                             '(2, 3)')):
        operand @ matrix(cls)


@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_matmul_function_mismatch(cls):
    with pytest.raises(ValueError, match=msg('right operand', '(5,)', 'must equal 3')):
        be.matmul(matrix(cls), jnp.ones(5))


@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_matmul_quantity_operand_mismatch(cls):
    with pytest.raises(ValueError, match=msg('right operand', '(4,)', 'must equal 3')):
        matrix(cls) @ (jnp.ones(4) * u.mV)


@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_matmul_0d_operand(cls):
    with pytest.raises(ValueError, match=msg('right operand', '1-D or 2-D', 'shape ()')):
        matrix(cls) @ jnp.array(1.0)


@pytest.mark.parametrize('wtype', [jnp.asarray, np.asarray], ids=['jax', 'numpy'])
@pytest.mark.parametrize('kind', ['binary-1d', 'binary-2d', 'indexed-1d', 'indexed-2d'])
def test_dense_weight_event_left_mismatch(kind, wtype):
    operand, shape = _left_operands()[kind]  # last dimension 4
    w = wtype(np.ones((3, 2), np.float32))
    with pytest.raises(ValueError, match=msg('left operand', str(shape), 'must equal 3',
                                             '(3, 2)')):
        operand @ w


@pytest.mark.parametrize('wtype', [jnp.asarray, np.asarray], ids=['jax', 'numpy'])
@pytest.mark.parametrize('kind', ['binary-1d', 'binary-2d', 'indexed-1d'])
def test_dense_weight_event_right_mismatch(kind, wtype):
    operand, shape = _right_operands()[kind]  # first dimension 4
    w = wtype(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match=msg('right operand', str(shape), 'must equal 3',
                                             '(2, 3)')):
        w @ operand


def test_dense_weight_event_1d_weights():
    with pytest.raises(ValueError, match=msg('2-D weights', '(3,)')):
        be.BinaryArray(jnp.ones(3)) @ jnp.ones(3)


# ---------------------------------------------------------------------------
# 5. 3-D inputs
# ---------------------------------------------------------------------------

THREE_D = {
    'jax': lambda: jnp.ones((3, 3, 3)),
    'numpy': lambda: np.ones((3, 3, 3), np.float32),
    'binary': lambda: be.BinaryArray(jnp.ones((3, 3, 3))),
}


@pytest.mark.parametrize('kind', list(THREE_D))
@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_matmul_3d_right(cls, kind):
    with pytest.raises(ValueError, match=msg('right operand', '1-D or 2-D', '(3, 3, 3)')):
        matrix(cls) @ THREE_D[kind]()


@pytest.mark.parametrize('kind', list(THREE_D))
@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_matmul_3d_left(cls, kind):
    with pytest.raises(ValueError, match=msg('left operand', '1-D or 2-D', '(3, 3, 3)')):
        THREE_D[kind]() @ matrix(cls)


@pytest.mark.parametrize('wtype', [jnp.ones, lambda s: np.ones(s, np.float32)],
                         ids=['jax', 'numpy'])
def test_binary_3d_at_dense(wtype):
    with pytest.raises(ValueError, match=msg('left operand', '1-D or 2-D', '(3, 3, 3)')):
        be.BinaryArray(jnp.ones((3, 3, 3))) @ wtype((3, 2))


@pytest.mark.parametrize('make', [jnp.ones, lambda s: np.ones(s, np.float32)],
                         ids=['jax', 'numpy'])
@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_constructor_3d_dense(cls, make):
    with pytest.raises(ValueError, match=msg('2-D', 'dense', '(2, 2, 2)')):
        cls(make((2, 2, 2)))


@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_fromdense_3d(cls):
    with pytest.raises(ValueError, match=msg('2-D', 'dense', '(2, 2, 2)')):
        cls.fromdense(jnp.ones((2, 2, 2)))


@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_fromdense_1d(cls):
    with pytest.raises(ValueError, match=msg('2-D', 'dense', '(4,)')):
        cls.fromdense(jnp.ones(4))


@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_fromdense_of_sparse(cls):
    with pytest.raises(TypeError, match=msg('fromdense', 'dense array', 'CSR')):
        cls.fromdense(matrix(be.CSR))


@pytest.mark.parametrize('event', ['binary', 'indexed'])
def test_dense_event_3d_weights_left(event):
    x = jnp.array([1., 0., 1.])
    ev = be.BinaryArray(x) if event == 'binary' else be.IndexedBinary1d.from_dense(x)
    with pytest.raises(ValueError, match=msg('2-D weights', '(3, 3, 2)')):
        ev @ jnp.ones((3, 3, 2))


@pytest.mark.parametrize('wtype', [jnp.ones, lambda s: np.ones(s, np.float32)],
                         ids=['jax', 'numpy'])
def test_dense_event_3d_weights_right(wtype):
    with pytest.raises(ValueError, match=msg('2-D weights', '(2, 2, 3)')):
        wtype((2, 2, 3)) @ be.BinaryArray(jnp.ones(3))


# ---------------------------------------------------------------------------
# 6. bad shapes
# ---------------------------------------------------------------------------

def _build(cls, shape):
    if cls is be.COO:
        return be.COO((jnp.ones(2), (jnp.array([0, 1]), jnp.array([0, 1]))), shape=shape)
    return cls((jnp.ones(2), jnp.array([0, 1]), jnp.array([0, 1, 2])), shape=shape)


@pytest.mark.parametrize('shape', [(-1, 3), (2, -3)])
@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_negative_shape(cls, shape):
    with pytest.raises(ValueError, match=msg('shape', 'non-negative', str(shape))):
        _build(cls, shape)


@pytest.mark.parametrize('shape', [(2.5, 3), ('a', 3), (None, 3), (2, 1.5)])
@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_non_integer_shape(cls, shape):
    with pytest.raises(TypeError, match=msg('shape', 'integers', repr(shape))):
        _build(cls, shape)


@pytest.mark.parametrize('shape', [(3,), (2, 2, 2)])
@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_wrong_length_shape(cls, shape):
    with pytest.raises(ValueError, match=msg('shape', '2 entries', str(shape),
                                             f'with {len(shape)}')):
        _build(cls, shape)


@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_scalar_shape(cls):
    with pytest.raises(TypeError, match=msg('shape', 'tuple of 2 integers', 'received 3')):
        _build(cls, 3)


@pytest.mark.parametrize('shape', [(-1, 3), (2, -1)])
@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_negative_empty_shape(cls, shape):
    with pytest.raises(ValueError, match=msg('shape', 'non-negative', str(shape))):
        cls(shape)


@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_shape_disagrees_with_dense(cls):
    with pytest.raises(ValueError, match=msg('shape=(3, 3)', '(2, 3)')):
        cls(jnp.asarray(DENSE), shape=(3, 3))


@pytest.mark.parametrize('m, n', [(-1, 3), (3, -2)])
def test_random_negative_shape(m, n):
    with pytest.raises(ValueError, match=msg('(m, n)', 'non-negative', str((m, n)))):
        be.random(m, n)


@pytest.mark.parametrize('m, n', [(2.5, 3), ('a', 3), (3, None)])
def test_random_non_integer_shape(m, n):
    with pytest.raises(TypeError, match=msg('(m, n)', 'integers', repr((m, n)))):
        be.random(m, n)


@pytest.mark.parametrize('cls', [be.IndexedBinary1d, be.IndexedBinary2d], ids=ids)
def test_indexed_bad_shape(cls):
    if cls is be.IndexedBinary1d:
        idx, count, neg, flt = jnp.array([0]), 1, (-1,), (2.5,)
    else:
        idx, count, neg, flt = jnp.array([[0]]), jnp.array([1]), (1, -1), (1, 2.5)
    with pytest.raises(ValueError, match=msg('shape', 'non-negative', str(neg))):
        cls(idx, count, shape=neg)
    with pytest.raises(TypeError, match=msg('shape', 'integers', str(flt))):
        cls(idx, count, shape=flt)


# ---------------------------------------------------------------------------
# 7. data / index lengths, with_data
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('n_data', [1 + 2, 4])
@pytest.mark.parametrize('cls', COMPRESSED, ids=ids)
def test_compressed_data_length(cls, n_data):
    with pytest.raises(ValueError, match=msg('data', 'shape (2,)', f'received shape ({n_data},)')):
        cls((jnp.ones(n_data), jnp.array([0, 1]), jnp.array([0, 1, 2])), shape=(2, 2))


@pytest.mark.parametrize('cls', COMPRESSED, ids=ids)
def test_compressed_data_2d(cls):
    with pytest.raises(ValueError, match=msg('data', 'shape (2,)', 'received shape (2, 1)')):
        cls((jnp.ones((2, 1)), jnp.array([0, 1]), jnp.array([0, 1, 2])), shape=(2, 2))


@pytest.mark.parametrize('n_data', [3, 5])
def test_coo_data_length(n_data):
    with pytest.raises(ValueError, match=msg('data', 'shape (2,)', f'received shape ({n_data},)')):
        be.COO((jnp.ones(n_data), (jnp.array([0, 1]), jnp.array([0, 1]))), shape=(2, 2))


def test_coo_row_col_length():
    with pytest.raises(ValueError, match=msg('row and col', 'same length', '2 and 3')):
        be.COO((jnp.ones(2), (jnp.array([0, 1]), jnp.array([0, 1, 1]))), shape=(2, 2))


@pytest.mark.parametrize('n_data', [2, 4])
@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_with_data_wrong_length(cls, n_data):
    m = matrix(cls)  # nnz 3
    with pytest.raises(ValueError, match=msg('data', 'shape (3,)', f'received shape ({n_data},)')):
        m.with_data(jnp.ones(n_data))


@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_with_data_quantity_wrong_length(cls):
    with pytest.raises(ValueError, match=msg('data', 'shape (3,)', 'received shape (5,)')):
        matrix(cls).with_data(jnp.ones(5) * u.mV)


def test_coo_bad_tuple():
    with pytest.raises(TypeError, match=msg('COO', '(data, (row, col))', 'tuple of 3')):
        be.COO((jnp.ones(2), jnp.array([0, 1]), jnp.array([0, 1])), shape=(2, 2))


@pytest.mark.parametrize('cls', COMPRESSED, ids=ids)
def test_compressed_bad_tuple(cls):
    with pytest.raises(TypeError, match=msg(cls.__name__, '(data, indices, indptr)',
                                            'tuple of 2')):
        cls((jnp.ones(2), (jnp.array([0, 1]), jnp.array([0, 1]))), shape=(2, 2))


# ---------------------------------------------------------------------------
# 8. unknown format names
# ---------------------------------------------------------------------------

VALID = ["'coo'", "'csc'", "'csr'"]


@pytest.mark.parametrize('name', ['bsr', 'dense', 'CSR'])
@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_asformat_unknown(cls, name):
    with pytest.raises(ValueError, match=msg('format', repr(name), *VALID)):
        matrix(cls).asformat(name)


def test_random_unknown_format():
    with pytest.raises(ValueError, match=msg('format', "'bsr'", *VALID)):
        be.random(3, 3, format='bsr')


@pytest.mark.parametrize('stack', [be.hstack, be.vstack])
def test_stack_unknown_format(stack):
    a = matrix(be.CSR, np.eye(2, dtype=np.float32))
    with pytest.raises(ValueError, match=msg('format', "'bsr'", *VALID)):
        stack([a, a], format='bsr')


# ---------------------------------------------------------------------------
# 9. non-integer index arrays
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('which', ['indices', 'indptr'])
@pytest.mark.parametrize('cls', COMPRESSED, ids=ids)
def test_compressed_float_indices(cls, which):
    arrays = {'indices': jnp.array([0, 1]), 'indptr': jnp.array([0, 1, 2])}
    arrays[which] = arrays[which].astype(jnp.float32)
    with pytest.raises(TypeError, match=msg(which, 'integer dtype', 'float32')):
        cls((jnp.ones(2), arrays['indices'], arrays['indptr']), shape=(2, 2))


@pytest.mark.parametrize('which', ['indices', 'indptr'])
@pytest.mark.parametrize('cls', COMPRESSED, ids=ids)
def test_compressed_bool_indices(cls, which):
    arrays = {'indices': jnp.array([0, 1]), 'indptr': jnp.array([0, 1, 2])}
    arrays[which] = arrays[which] > 0
    with pytest.raises(TypeError, match=msg(which, 'integer dtype', 'bool')):
        cls((jnp.ones(2), arrays['indices'], arrays['indptr']), shape=(2, 2))


@pytest.mark.parametrize('which', ['row', 'col'])
def test_coo_float_indices(which):
    coords = {'row': jnp.array([0, 1]), 'col': jnp.array([0, 1])}
    coords[which] = np.array([0., 1.])
    with pytest.raises(TypeError, match=msg(which, 'integer dtype', 'float')):
        be.COO((jnp.ones(2), (coords['row'], coords['col'])), shape=(2, 2))


@pytest.mark.parametrize('which', ['indices', 'indptr'])
@pytest.mark.parametrize('cls', COMPRESSED, ids=ids)
def test_compressed_quantity_indices(cls, which):
    arrays = {'indices': jnp.array([0, 1]), 'indptr': jnp.array([0, 1, 2])}
    arrays[which] = u.Quantity(arrays[which], unit=u.mV)
    with pytest.raises(TypeError, match=msg(which, 'without units', 'Quantity', 'mV')):
        cls((jnp.ones(2), arrays['indices'], arrays['indptr']), shape=(2, 2))


@pytest.mark.parametrize('which', ['row', 'col'])
def test_coo_quantity_indices(which):
    coords = {'row': jnp.array([0, 1]), 'col': jnp.array([0, 1])}
    coords[which] = u.Quantity(coords[which], unit=u.second)
    with pytest.raises(TypeError, match=msg(which, 'without units', 'Quantity')):
        be.COO((jnp.ones(2), (coords['row'], coords['col'])), shape=(2, 2))


def test_indexed_float_indices():
    with pytest.raises(TypeError, match=msg('indices', 'integer dtype', 'float32')):
        be.IndexedBinary1d(jnp.array([0., 1.]), 2, shape=(3,))


def test_indexed_quantity_indices():
    with pytest.raises(TypeError, match=msg('indices', 'without units', 'Quantity')):
        be.IndexedBinary1d(u.Quantity(jnp.array([0, 1]), unit=u.mV), 2, shape=(3,))


@pytest.mark.parametrize('cls', COMPRESSED, ids=ids)
def test_compressed_string_indices(cls):
    # Extension of case 9: a string index array is non-integer too.
    with pytest.raises(TypeError, match=msg('indices', patterns=['<U1|str'])):
        cls((jnp.ones(2), np.array(['a', 'b']), jnp.array([0, 1, 2])), shape=(2, 2))


@pytest.mark.parametrize('cls', COMPRESSED, ids=ids)
def test_compressed_string_data(cls):
    # A string weight array: the message should name data and the dtype received.
    with pytest.raises(TypeError, match=msg('data', patterns=['<U1|str'])):
        cls((np.array(['a', 'b']), jnp.array([0, 1]), jnp.array([0, 1, 2])), shape=(2, 2))


@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_matmul_string_operand(cls):
    # A string operand: the message should name the operand and the dtype received.
    with pytest.raises(TypeError, match=msg('operand', patterns=['<U1|str'])):
        matrix(cls) @ np.array(['a', 'b', 'c'])


# ---------------------------------------------------------------------------
# 10. product pairs without a registry entry
# ---------------------------------------------------------------------------

def _operands():
    x = jnp.array([1., 0., 1.])
    return {
        'CSR': matrix(be.CSR, np.eye(3, dtype=np.float32)),
        'CSC': matrix(be.CSC, np.eye(3, dtype=np.float32)),
        'COO': matrix(be.COO, np.eye(3, dtype=np.float32)),
        'BinaryArray': be.BinaryArray(x),
        'IndexedBinary1d': be.IndexedBinary1d.from_dense(x),
    }


UNREGISTERED = [('CSR', 'CSR'), ('CSR', 'CSC'), ('COO', 'CSR'), ('CSC', 'COO'),
                ('BinaryArray', 'BinaryArray'), ('IndexedBinary1d', 'BinaryArray'),
                ('BinaryArray', 'IndexedBinary1d')]


@pytest.mark.parametrize('left, right', UNREGISTERED)
def test_unregistered_pair_operator(left, right):
    ops = _operands()
    with pytest.raises(TypeError, match=msg(f'{left} @ {right}', 'registered',
                                            f'{left} @ jax.Array')):
        ops[left] @ ops[right]


@pytest.mark.parametrize('left, right', UNREGISTERED)
def test_unregistered_pair_function(left, right):
    ops = _operands()
    with pytest.raises(TypeError, match=msg(f'{left} @ {right}', 'registered')):
        be.matmul(ops[left], ops[right])


def test_unregistered_pair_with_python_object():
    with pytest.raises(TypeError, match=msg('CSR @ int', 'registered', 'CSR @ jax.Array')):
        be.matmul(_operands()['CSR'], 3)


# ---------------------------------------------------------------------------
# 11. backend names
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('name', ['nope', 'JAX', ''])
def test_set_backend_unknown(name):
    before = be.config.get_backend()
    with pytest.raises(ValueError, match=msg('backend', repr(name), 'available', "'jax'")):
        be.config.set_backend(name)
    assert be.config.get_backend() == before


@pytest.mark.parametrize('name', [3, 1.5, b'jax', ['jax']])
def test_set_backend_not_a_string(name):
    before = be.config.get_backend()
    with pytest.raises(TypeError, match=msg('backend', 'string', repr(name))):
        be.config.set_backend(name)
    assert be.config.get_backend() == before


def test_backend_context_unknown():
    before = be.config.get_backend()
    with pytest.raises(ValueError, match=msg('backend', "'nope'", 'available', "'jax'")):
        with be.config.backend('nope'):
            pass  # pragma: no cover
    assert be.config.get_backend() == before


def test_set_backend_unknown_platform():
    with pytest.raises(ValueError, match=msg("'jax'", "platform 'nope'", 'available')):
        be.config.set_backend('jax', platform='nope')


# ---------------------------------------------------------------------------
# 12. event arrays
# ---------------------------------------------------------------------------

def test_binary_quantity():
    with pytest.raises(TypeError, match=msg('BinaryArray', 'without units', 'Quantity', 'mV')):
        be.BinaryArray(jnp.ones(3) * u.mV)


@pytest.mark.parametrize('value', [np.array(['a', 'b']), ['a', 'b']], ids=['ndarray', 'list'])
def test_binary_strings(value):
    with pytest.raises(TypeError, match=msg('BinaryArray', patterns=['<U1|str'])):
        be.BinaryArray(value)


def test_binary_of_indexed():
    ev = be.IndexedBinary1d.from_dense(jnp.array([1., 0.]))
    with pytest.raises(TypeError, match=msg('BinaryArray', 'dense array', 'IndexedBinary1d')):
        be.BinaryArray(ev)


@pytest.mark.parametrize('shape', [(2, 3), (2, 2, 2), ()])
def test_indexed1d_from_dense_not_1d(shape):
    with pytest.raises(ValueError, match=msg('IndexedBinary1d.from_dense', '1-D',
                                             f'shape {shape}')):
        be.IndexedBinary1d.from_dense(jnp.ones(shape))


@pytest.mark.parametrize('shape', [(3,), (2, 2, 2)])
def test_indexed2d_from_dense_not_2d(shape):
    with pytest.raises(ValueError, match=msg('IndexedBinary2d.from_dense', '2-D',
                                             f'shape {shape}')):
        be.IndexedBinary2d.from_dense(jnp.ones(shape))


def test_indexed1d_overflow():
    x = jnp.array([1., 1., 0., 1.])
    with pytest.raises(ValueError, match=msg('3 events', 'max_events=2')):
        be.IndexedBinary1d.from_dense(x, max_events=2)


def test_indexed2d_overflow():
    x = jnp.array([[1., 0., 0.], [1., 1., 1.]])
    with pytest.raises(ValueError, match=msg('3 events', 'max_events=1')):
        be.IndexedBinary2d.from_dense(x, max_events=1)


@pytest.mark.parametrize('cls', [be.IndexedBinary1d, be.IndexedBinary2d], ids=ids)
@pytest.mark.parametrize('bad', [-1, -10])
def test_indexed_negative_max_events(cls, bad):
    x = jnp.ones(3) if cls is be.IndexedBinary1d else jnp.ones((2, 3))
    with pytest.raises(ValueError, match=msg('max_events', 'non-negative', repr(bad))):
        cls.from_dense(x, max_events=bad)


@pytest.mark.parametrize('bad', [2.5, '2', True])
def test_indexed_non_int_max_events(bad):
    with pytest.raises((TypeError, ValueError), match=msg('max_events', 'int', repr(bad))):
        be.IndexedBinary1d.from_dense(jnp.ones(3), max_events=bad)


def test_indexed_count_shape():
    with pytest.raises(ValueError, match=msg('count', 'shape (2,)', '(3,)')):
        be.IndexedBinary2d(jnp.zeros((2, 1), jnp.int32), jnp.array([0, 0, 0]), shape=(2, 4))


def test_indexed_indices_shape():
    with pytest.raises(ValueError, match=msg('indices', 'shape (2,)', 'max_events', '(3, 1)')):
        be.IndexedBinary2d(jnp.zeros((3, 1), jnp.int32), jnp.array([0, 0]), shape=(2, 4))


@pytest.mark.parametrize('fn', [be.concatenate, be.stack])
def test_event_concat_bad_input(fn):
    with pytest.raises(ValueError, match=msg(fn.__name__, 'at least one')):
        fn([])
    with pytest.raises(TypeError, match=msg(fn.__name__, 'BinaryArray', 'Array',
                                            patterns=[r'arrays\[1\]|item 1'])):
        fn([be.BinaryArray(jnp.ones(2)), jnp.ones(2)])


# ---------------------------------------------------------------------------
# 13. element-wise arithmetic
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_multiply_sparse_shape_mismatch(cls):
    a, b = matrix(cls), matrix(cls, DENSE.T)
    with pytest.raises(ValueError, match=msg('multiply', '(2, 3)', '(3, 2)')):
        a.multiply(b)
    with pytest.raises(ValueError, match=msg('multiply', '(2, 3)', '(3, 2)')):
        a * b


@pytest.mark.parametrize('shape', [(3, 3), (2, 2), (4,)])
@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_multiply_dense_shape_mismatch(cls, shape):
    with pytest.raises(ValueError, match=msg('multiply', str(shape), '(2, 3)')):
        matrix(cls).multiply(jnp.ones(shape))


@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_multiply_3d(cls):
    with pytest.raises(ValueError, match=msg('multiply', '2-D', '(1, 2, 3)')):
        matrix(cls).multiply(jnp.ones((1, 2, 3)))


@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_add_sparse_shape_mismatch(cls):
    a, b = matrix(cls), matrix(cls, DENSE.T)
    with pytest.raises(ValueError, match=msg('add', '(2, 3)', '(3, 2)')):
        a + b
    with pytest.raises(ValueError, match=msg('(2, 3)', '(3, 2)')):
        a - b


@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_add_dense_shape_mismatch(cls):
    with pytest.raises(ValueError, match=msg('add', '(2, 3)', '(3, 3)')):
        matrix(cls) + jnp.ones((3, 3))


@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_add_1d_dense_shape_mismatch(cls):
    # (4,) broadcasts to neither dimension of a (2, 3) matrix.
    with pytest.raises((ValueError, TypeError), match=msg('(4,)', '(2, 3)')):
        matrix(cls) + jnp.ones(4)


@pytest.mark.parametrize('value', [1.0, 2, jnp.array(0.5), np.float32(-1.)],
                         ids=['float', 'int', 'jax-0d', 'numpy-scalar'])
@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_add_nonzero_scalar(cls, value):
    m = matrix(cls)
    with pytest.raises(TypeError, match=msg('nonzero scalar', 'dense', 'todense()')):
        m + value
    with pytest.raises(TypeError, match=msg('nonzero scalar', 'dense')):
        value + m


@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_divide_by_non_scalar(cls):
    m = matrix(cls)
    with pytest.raises(TypeError, match=msg('divided by a scalar only', 'Array')):
        m / jnp.ones((2, 3))
    with pytest.raises(TypeError, match=msg('divided by a scalar only', 'ndarray')):
        m / np.ones((2, 3))
    with pytest.raises(TypeError, match=msg('divided by a scalar only', cls.__name__)):
        m / m


@pytest.mark.parametrize('axis', [2, -3, 5])
@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_sum_bad_axis(cls, axis):
    with pytest.raises(ValueError, match=msg('axis', 'None, 0 or 1', f'received {axis}')):
        matrix(cls).sum(axis=axis)


# ---------------------------------------------------------------------------
# 14. eager-only operations inside jit
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('method', ['check_format', 'sum_duplicates', 'eliminate_zeros'])
@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_eager_only_inside_jit(cls, method):
    def f(m):
        out = getattr(m, method)()
        return None if out is None else out.data

    with pytest.raises(ValueError, match=msg(f'{method}()', 'outside jit')):
        jax.jit(f)(matrix(cls))


@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_fromdense_inside_jit_without_nse(cls):
    with pytest.raises(ValueError, match=msg('fromdense', 'jit', 'nse=')):
        jax.jit(lambda d: cls.fromdense(d).data)(jnp.asarray(DENSE))


@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_dense_constructor_inside_jit(cls):
    with pytest.raises(ValueError, match=msg('fromdense', 'jit', 'nse=')):
        jax.jit(lambda d: cls(d).data)(jnp.asarray(DENSE))


@pytest.mark.parametrize('cls', COMPRESSED, ids=ids)
def test_compressed_without_shape_inside_jit(cls):
    def f(indices):
        return cls((jnp.ones(2), indices, jnp.array([0, 1, 2]))).data

    with pytest.raises(ValueError, match=msg('shape is required', 'jit', 'indices')):
        jax.jit(f)(jnp.array([0, 1]))


def test_coo_without_shape_inside_jit():
    def f(row, col):
        return be.COO((jnp.ones(2), (row, col))).data

    with pytest.raises(ValueError, match=msg('shape is required', 'jit', 'row')):
        jax.jit(f)(jnp.array([0, 1]), jnp.array([0, 1]))


@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_without_shape_empty_indices(cls):
    empty = jnp.zeros(0, jnp.int32)
    name = 'row' if cls is be.COO else 'indices'
    with pytest.raises(ValueError, match=msg('shape is required', f'empty {name}')):
        if cls is be.COO:
            be.COO((jnp.ones(0), (empty, empty)))
        else:
            cls((jnp.ones(0), empty, jnp.zeros(1, jnp.int32)))


# ---------------------------------------------------------------------------
# 15. module functions
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('fmt', ['coo', 'csr', 'csc'])
def test_hstack_row_mismatch(fmt):
    a = matrix(be.CSR).asformat(fmt)                        # (2, 3)
    b = matrix(be.CSR, np.eye(3, dtype=np.float32)).asformat(fmt)  # (3, 3)
    with pytest.raises(ValueError, match=msg('hstack', 'blocks[1]', '(3, 3)', '2 rows')):
        be.hstack([a, b])


@pytest.mark.parametrize('fmt', ['coo', 'csr', 'csc'])
def test_vstack_column_mismatch(fmt):
    a = matrix(be.CSR).asformat(fmt)                        # (2, 3)
    b = matrix(be.CSR, np.eye(2, dtype=np.float32)).asformat(fmt)  # (2, 2)
    with pytest.raises(ValueError, match=msg('vstack', 'blocks[1]', '(2, 2)', '3 columns')):
        be.vstack([a, b])


@pytest.mark.parametrize('stack', [be.hstack, be.vstack])
@pytest.mark.parametrize('block, received', [(jnp.ones((2, 3)), 'Array'),
                                             (np.ones((2, 3)), 'ndarray'), (None, 'NoneType')],
                         ids=['jax', 'numpy', 'None'])
def test_stack_non_sparse_block(stack, block, received):
    with pytest.raises(TypeError, match=msg(stack.__name__, received, patterns=[
            r'SparseMatrix|sparse matri', r'blocks\[1\]|item 1'])):
        stack([matrix(be.CSR), block])


@pytest.mark.parametrize('stack', [be.hstack, be.vstack])
def test_stack_empty(stack):
    with pytest.raises(ValueError, match=msg(stack.__name__, 'at least one block')):
        stack([])


@pytest.mark.parametrize('obj', [jnp.ones((2, 2)), np.ones((2, 2)), 'w'],
                         ids=['jax', 'numpy', 'str'])
def test_save_npz_non_matrix(tmp_path, obj):
    with pytest.raises(TypeError, match=msg('save_npz', 'sparse matrix')):
        be.save_npz(tmp_path / 'w.npz', obj)


def test_save_npz_scipy_matrix(tmp_path):
    import scipy.sparse as sp
    with pytest.raises(TypeError, match=msg('save_npz', 'sparse matrix', 'scipy')):
        be.save_npz(tmp_path / 'w.npz', sp.eye_array(3, format='csr'))


def test_load_npz_without_format(tmp_path):
    path = tmp_path / 'plain.npz'
    np.savez(path, data=np.ones(3), shape=np.array([3, 3]))
    with pytest.raises(ValueError, match=msg("no 'format' entry", 'plain.npz')):
        be.load_npz(path)


def test_load_npz_unknown_format(tmp_path):
    path = tmp_path / 'bsr.npz'
    np.savez(path, format=np.array(b'bsr'), shape=np.array([3, 3]), data=np.ones(3))
    with pytest.raises(ValueError, match=msg("'bsr'", *VALID)):
        be.load_npz(path)


@pytest.mark.parametrize('density', [-0.1, 1.5, 2, float('nan'), float('inf')])
def test_random_density_out_of_range(density):
    with pytest.raises(ValueError, match=msg('density', '[0, 1]', repr(density))):
        be.random(4, 4, density=density)


@pytest.mark.parametrize('density', ['a', None])
def test_random_density_not_a_number(density):
    with pytest.raises((TypeError, ValueError), match=msg('density', repr(density))):
        be.random(4, 4, density=density)


@pytest.mark.parametrize('unit', [u.mV, u.siemens], ids=['mV', 'S'])
@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_to_scipy_with_units(cls, unit):
    m = matrix(cls)
    m = m.with_data(m.data * unit)
    with pytest.raises(TypeError, match=msg('scipy.sparse', 'units', str(unit))):
        m.to_scipy()


def test_coo2csr_coo_with_col():
    coo = matrix(be.COO)
    with pytest.raises(TypeError, match=msg('coo2csr(coo)', 'no col or data')):
        be.coo2csr(coo, jnp.array([0, 1, 2]))
    with pytest.raises(TypeError, match=msg('coo2csr(coo)', 'no col or data')):
        be.coo2csr(coo, data=1.0)


def test_coo2csr_row_alone():
    with pytest.raises(TypeError, match=msg('coo2csr', 'row and col', 'alone')):
        be.coo2csr(jnp.array([0, 1]))


def test_coo2csr_length_mismatch():
    with pytest.raises(ValueError, match=msg('row and col', 'same length', '2 and 3')):
        be.coo2csr(jnp.array([0, 1]), jnp.array([0, 1, 2]), shape=(3, 3))


def test_coo2csr_data_length():
    with pytest.raises(ValueError, match=msg('data', 'shape (2,)', 'received shape (3,)')):
        be.coo2csr(jnp.array([0, 1]), jnp.array([0, 1]), jnp.ones(3), shape=(3, 3))


@pytest.mark.parametrize('which', ['row', 'col'])
def test_coo2csr_float_indices(which):
    coords = {'row': jnp.array([0, 1]), 'col': jnp.array([0, 1])}
    coords[which] = coords[which].astype(jnp.float32)
    with pytest.raises(TypeError, match=msg(which, 'integer dtype', 'float32')):
        be.coo2csr(coords['row'], coords['col'], shape=(2, 2))


def test_coo2csr_bad_shape():
    with pytest.raises(ValueError, match=msg('shape', 'non-negative', '(-2, 2)')):
        be.coo2csr(jnp.array([0, 1]), jnp.array([0, 1]), shape=(-2, 2))


# ---------------------------------------------------------------------------
# 16. transpose axes
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('axes', [(0, 1), (1, 0, 2), (0,), [0, 1]])
@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_transpose_bad_axes(cls, axes):
    with pytest.raises(ValueError, match=msg('axes=(1, 0)', repr(axes))):
        matrix(cls).transpose(axes=axes)


@pytest.mark.parametrize('cls', FORMATS, ids=ids)
def test_transpose_good_axes(cls):
    assert matrix(cls).transpose(axes=(1, 0)).shape == (3, 2)
