"""CSR, and CSC as a view of the CSR of the transpose."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .._misc import (as_index_array, check_shape, index_dtype, is_concrete, split_unit,
                     type_name, with_unit)
from ._base import SparseMatrix, check_data, register_products
from ._coo import COO, check_index_range, convert_arg, eager_only, infer_extent
from ..backends._numba_ffi import numba_available
from ._plasticity import format_update, grouping, major_grouping, minor_grouping
from ._matmul import (coordinate_impl, coordinate_kernel, coordinate_weight_ct, indexed_kernel,
                      masked_impl)

__all__ = ['CSR', 'CSC']


def csr_rows(indptr, nnz: int):
    """The row of every stored entry, from ``indptr`` (jit-able)."""
    m = indptr.shape[0] - 1
    return jnp.repeat(jnp.arange(m, dtype=indptr.dtype), jnp.diff(indptr),
                      total_repeat_length=nnz)


def _csr_coords(indices, indptr, *, shape):
    return csr_rows(indptr, indices.shape[0]), indices


csr_matmul = coordinate_kernel('csr_matmul', _csr_coords)
csr_indexed_matmul = indexed_kernel('csr_indexed_matmul',
                                    partial(masked_impl, partial(coordinate_impl, _csr_coords)),
                                    partial(coordinate_weight_ct, _csr_coords))


def _check_compressed(data, indices, indptr, shape, names):
    """O(1) checks of compressed arrays; ``names[0]`` words the major axis length."""
    major = names[0]
    if indptr.shape[0] != shape[0] + 1:
        raise ValueError(f"indptr has length {indptr.shape[0]}; expected {major} + 1 = "
                         f"{shape[0] + 1}")
    return check_data(data, indices.shape[0])


class _Compressed(SparseMatrix):
    """Storage shared by CSR and CSC: ``(data, indices, indptr)`` along a major axis."""

    _names: tuple[str, str]
    _fields = ('data', 'indices', 'indptr')

    def __init__(self, arg, shape=None, dtype=None):
        matrix = convert_arg(type(self), arg, shape, dtype)
        if matrix is not None:
            self._set(matrix.data, matrix.indices, matrix.indptr, shape=matrix.shape)
            return
        if len(arg) != 3:
            raise TypeError(f"{type(self).__name__} expects (data, indices, indptr), a shape, a "
                            f"dense or sparse matrix; received a tuple of {len(arg)} "
                            f"({', '.join(type_name(a) for a in arg)})")
        data, indices, indptr = arg
        indices, indptr = as_index_array(indices, 'indices'), as_index_array(indptr, 'indptr')
        if shape is None:
            major, minor = indptr.shape[0] - 1, infer_extent(indices, 'indices')
            shape = (major, minor) if self.format == 'csr' else (minor, major)
        shape = check_shape(shape)
        data = _check_compressed(data, indices, indptr, self._major_minor(shape), self._names)
        if dtype is not None:
            data = check_data(data, indices.shape[0], dtype)
        self._set(data, indices, indptr, shape=shape)

    def _major_minor(self, shape):
        return shape if self.format == 'csr' else shape[::-1]

    @property
    def nnz(self) -> int:
        return self.indices.shape[0]

    def to_scipy(self):
        import scipy.sparse as sp
        cls = sp.csr_array if self.format == 'csr' else sp.csc_array
        return cls((self._scipy_data(), np.asarray(self.indices), np.asarray(self.indptr)),
                   shape=self.shape)

    def check_format(self, full_check: bool = True):
        """Check ``indptr`` and ``indices`` (eager; raises ``ValueError`` on the first problem).

        Examples
        --------
        >>> import jax.numpy as jnp, brainevent
        >>> m = brainevent.CSR((jnp.ones(2), jnp.array([0, 5]), jnp.array([0, 1, 2])), shape=(2, 3))
        >>> m.check_format()
        Traceback (most recent call last):
        ...
        ValueError: indices contains 5, outside [0, 3); every indices index must be non-negative and less than 3
        """
        shape = self._major_minor(self.shape)
        _check_compressed(self.data, self.indices, self.indptr, shape, self._names)
        if not full_check:
            return
        eager_only(self, 'check_format')
        indptr = np.asarray(self.indptr)
        if indptr[0] != 0:
            raise ValueError(f"indptr[0] is {int(indptr[0])}; expected 0")
        if indptr[-1] != self.nnz:
            raise ValueError(f"indptr[-1] is {int(indptr[-1])}; expected nnz = {self.nnz} "
                             f"(the length of indices)")
        drops = np.flatnonzero(np.diff(indptr) < 0)
        if drops.size:
            i = int(drops[0])
            raise ValueError(f"indptr must be non-decreasing; indptr[{i + 1}] = "
                             f"{int(indptr[i + 1])} < indptr[{i}] = {int(indptr[i])}")
        check_index_range(self.indices, shape[1], 'indices')

    def sort_indices(self):
        """Sort the indices within each row/column (returns a new matrix; works in jit)."""
        return self._keep_backend(type(self).fromcoo(self.tocoo().sort_indices()))

    def sum_duplicates(self):
        """Merge duplicate entries and sort indices (eager; returns a new matrix)."""
        return self._keep_backend(type(self).fromcoo(self.tocoo().sum_duplicates()))

    def eliminate_zeros(self):
        """Drop entries whose weight is zero (eager; returns a new matrix)."""
        return self._keep_backend(type(self).fromcoo(self.tocoo().eliminate_zeros()))

    def _grouping(self, pre: bool):
        if pre == (self.format == 'csr'):  # the stored rows/columns are the spiking side
            return major_grouping(self.indptr, self.indices)
        if not is_concrete(self.indices, self.indptr):  # no sort per call: walk every row
            return minor_grouping(self.indptr, self.indices)
        return grouping('compressed-minor', (self.indices, self.indptr),
                        lambda idx, ptr: (idx, csr_rows(ptr, idx.shape[0])),
                        self._major_minor(self.shape)[1])

    def _transposed(self, cls, axes):
        if axes is not None and tuple(axes) != (1, 0):
            raise ValueError(f"a matrix transposes with axes=(1, 0) only; received {axes!r}")
        return cls._make(self.data, self.indices, self.indptr, shape=self.shape[::-1],
                         backend=self.backend)


@jax.tree_util.register_pytree_node_class
class CSR(_Compressed):
    """Compressed sparse row matrix, mirroring ``scipy.sparse.csr_array``.

    Row ``i`` holds ``indices[indptr[i]:indptr[i + 1]]`` (column indices) with
    weights ``data[indptr[i]:indptr[i + 1]]``. For a connectivity matrix of
    shape ``(num_pre, num_post)`` a row is a presynaptic neuron's targets, so
    ``spikes @ csr`` visits only the rows of neurons that spiked.

    Constructor forms (as in scipy)::

        CSR((data, indices, indptr), shape=(m, n))  # data may be a scalar
        CSR(scipy_sparse_matrix_or_array)
        CSR(dense_2d_array)
        CSR((m, n), dtype=...)                      # empty
        CSR(other_brainevent_matrix)

    ``data`` may be a brainunit Quantity; products then carry its unit.

    Examples
    --------
    >>> import jax.numpy as jnp, scipy.sparse as sp, brainevent
    >>> s = sp.random(4, 3, density=0.5, format='csr', random_state=0)
    >>> w = brainevent.CSR(s)
    >>> spikes = brainevent.BinaryArray(jnp.array([True, False, True, True]))
    >>> bool(jnp.allclose(spikes @ w, jnp.array([1., 0., 1., 1.]) @ s.toarray()))
    True
    """

    format = 'csr'
    _names = ('shape[0]', 'shape[1]')

    # -- conversions -----------------------------------------------------
    def tocoo(self):
        row = csr_rows(self.indptr, self.nnz)
        return COO._make(self.data, row, self.indices, shape=self.shape, backend=self.backend)

    @classmethod
    def fromcoo(cls, coo):
        m, n = coo.shape
        idx = index_dtype(m, n, coo.nnz)
        order = jnp.argsort(coo.row, stable=True)
        w, unit = split_unit(coo.data)
        data = with_unit(w if coo.is_homogeneous else w[order], unit)
        counts = jax.ops.segment_sum(jnp.ones(coo.nnz, idx), coo.row, num_segments=m)
        indptr = jnp.concatenate([jnp.zeros(1, idx), jnp.cumsum(counts, dtype=idx)])
        return CSR._make(data, coo.col[order].astype(idx), indptr, shape=(m, n))

    def transpose(self, axes=None):
        """The transposed matrix: a CSC view of the same arrays (no copy)."""
        return self._transposed(CSC, axes)

    def _matmul_call(self, w, b, info, backend):
        return csr_matmul.bind(w, self.indices, self.indptr, b, info=info, backend=backend)[0]

    def _indexed_call(self, w, ev_indices, ev_count, info, backend):
        return csr_indexed_matmul.bind(w, self.indices, self.indptr, ev_indices, ev_count,
                                       info=info, backend=backend)[0]


@jax.tree_util.register_pytree_node_class
class CSC(_Compressed):
    """Compressed sparse column matrix, mirroring ``scipy.sparse.csc_array``.

    A view: the arrays of a CSC of shape ``(m, n)`` are those of the CSR of its
    transpose (shape ``(n, m)``), so ``.T`` converts between the two for free
    and CSC products run the CSR kernels with the orientation flipped. Column
    ``j`` holds row indices ``indices[indptr[j]:indptr[j + 1]]``: a
    connectivity matrix stored as CSC is cheap to read per postsynaptic neuron.

    Examples
    --------
    >>> import jax.numpy as jnp, brainevent
    >>> m = brainevent.CSC(jnp.array([[1., 0.], [2., 3.]]))
    >>> m.indptr, m.indices
    (Array([0, 2, 3], dtype=int32), Array([0, 1, 1], dtype=int32))
    >>> m @ jnp.array([1., 1.])
    Array([1., 5.], dtype=float32)
    """

    format = 'csc'
    _names = ('shape[1]', 'shape[0]')

    @property
    def _csr_t(self) -> CSR:
        return CSR._make(self.data, self.indices, self.indptr, shape=self.shape[::-1],
                         backend=self.backend)

    def tocoo(self):
        return self._csr_t.tocoo().transpose()

    @classmethod
    def fromcoo(cls, coo):
        return CSR.fromcoo(coo.transpose()).transpose()

    def transpose(self, axes=None):
        """The transposed matrix: a CSR view of the same arrays (no copy)."""
        return self._transposed(CSR, axes)

    def _matmul_call(self, w, b, info, backend):
        flipped = info._replace(shape=info.shape[::-1], transpose=not info.transpose)
        csr_t = self._csr_t
        if b.ndim == 1:
            return csr_t._matmul_call(w, b, flipped, backend)
        return csr_t._matmul_call(w, b.T, flipped, backend).T


register_products(CSR, csr_matmul, indexed=csr_indexed_matmul)
register_products(CSC, csr_matmul)
update_csr_on_binary_pre = format_update(CSR, pre=True)
update_csr_on_binary_post = format_update(CSR, pre=False)
update_csc_on_binary_pre = format_update(CSC, pre=True)
update_csc_on_binary_post = format_update(CSC, pre=False)

if numba_available:
    from ._numba import csr_body, csr_indexed_body, register_numba
    register_numba(csr_matmul, csr_body)
    register_numba(csr_indexed_matmul, csr_indexed_body)
