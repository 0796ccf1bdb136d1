"""COO: entries stored as (data, (row, col)); the hub of every conversion."""

import numbers

import jax
import jax.numpy as jnp
import numpy as np

from .._misc import (as_index_array, check_shape, index_dtype, is_concrete, split_unit,
                     type_name, with_unit)
from ._base import SparseMatrix, check_data, register_products, _numeric
from ..backends._numba_ffi import numba_available
from ._matmul import coordinate_kernel
from ._plasticity import format_update, grouping

__all__ = ['COO']


def _is_shape(arg) -> bool:
    """A tuple of two Python/numpy scalars: scipy's ``(m, n)`` form (validated later)."""
    return (isinstance(arg, tuple) and len(arg) == 2 and
            all(isinstance(d, (numbers.Number, np.number)) for d in arg))


def convert_arg(cls, arg, shape, dtype):
    """The scipy constructor forms every format shares, or ``None`` for a format's own tuple.

    Handles another sparse matrix, a ``scipy.sparse`` matrix/array, ``(m, n)``
    (an empty matrix) and a dense 2-D array.
    """
    import scipy.sparse as sp
    if isinstance(arg, SparseMatrix):
        matrix = arg.asformat(cls.format)
    elif sp.issparse(arg):
        matrix = cls.from_scipy(arg)
    elif _is_shape(arg):
        m, n = check_shape(arg)
        empty = COO._make(jnp.zeros(0, dtype or float), jnp.zeros(0, jnp.int32),
                          jnp.zeros(0, jnp.int32), shape=(m, n))
        matrix = cls.fromcoo(empty)
    elif isinstance(arg, tuple):
        return None
    else:
        matrix = cls.fromdense(arg)
    if shape is not None and check_shape(shape) != matrix.shape:
        raise ValueError(f"shape={tuple(shape)} disagrees with the shape {matrix.shape} of the "
                         f"given matrix")
    return matrix if dtype is None else matrix.astype(dtype)


def infer_extent(indices, name: str) -> int:
    """scipy's rule for a missing shape: one past the largest index (eager only)."""
    if not is_concrete(indices):
        raise ValueError(f"shape is required inside jit (it cannot be inferred from {name})")
    if indices.size == 0:
        raise ValueError(f"shape is required: it cannot be inferred from an empty {name}")
    return int(jnp.max(indices)) + 1


@jax.tree_util.register_pytree_node_class
class COO(SparseMatrix):
    """Sparse matrix in coordinate format, mirroring ``scipy.sparse.coo_array``.

    Constructor forms (as in scipy)::

        COO((data, (row, col)), shape=(m, n))  # data may be a scalar: one weight for all
        COO(scipy_sparse_matrix_or_array)
        COO(dense_2d_array)
        COO((m, n), dtype=...)                  # empty
        COO(other_brainevent_matrix)

    Duplicate entries are allowed and summed by every operation; entries need
    not be sorted. ``data`` may be a brainunit Quantity.

    Examples
    --------
    >>> import jax.numpy as jnp, brainevent
    >>> m = brainevent.COO((jnp.array([1., 2., 3.]), (jnp.array([0, 1, 1]), jnp.array([2, 0, 0]))),
    ...                    shape=(2, 3))
    >>> m.todense()
    Array([[0., 0., 1.],
           [5., 0., 0.]], dtype=float32)
    >>> brainevent.BinaryArray(jnp.array([True, True])) @ m
    Array([5., 0., 1.], dtype=float32)
    """

    format = 'coo'
    _fields = ('data', 'row', 'col')

    def __init__(self, arg, shape=None, dtype=None):
        matrix = convert_arg(COO, arg, shape, dtype)
        if matrix is not None:
            self._set(matrix.data, matrix.row, matrix.col, shape=matrix.shape)
            return
        if len(arg) != 2 or not isinstance(arg[1], (tuple, list)) or len(arg[1]) != 2:
            raise TypeError(f"COO expects (data, (row, col)), a shape, a dense or sparse "
                            f"matrix; received a tuple of {len(arg)} "
                            f"({', '.join(type_name(a) for a in arg)})")
        data, (row, col) = arg
        row, col = as_index_array(row, 'row'), as_index_array(col, 'col')
        if row.shape != col.shape:
            raise ValueError(f"row and col must have the same length; received {row.shape[0]} "
                             f"and {col.shape[0]}")
        if shape is None:
            shape = (infer_extent(row, 'row'), infer_extent(col, 'col'))
        self._set(check_data(data, row.shape[0], dtype), row, col, shape=check_shape(shape))

    @property
    def nnz(self) -> int:
        return self.row.shape[0]

    # -- conversions -----------------------------------------------------
    def tocoo(self):
        return self

    @classmethod
    def fromcoo(cls, coo):
        return coo

    @classmethod
    def fromdense(cls, dense, nse: int | None = None):
        """Build from a 2-D dense array; inside ``jit`` give ``nse`` (stored entries).

        With ``nse`` larger than the number of nonzeros the extra entries are
        explicit zeros at (0, 0); with fewer, the first ``nse`` in row-major
        order are kept.
        """
        if isinstance(dense, SparseMatrix):
            raise TypeError(f"fromdense takes a dense array; received {type_name(dense)}")
        values, unit = _numeric(dense, 'dense')
        if values.ndim != 2:
            raise ValueError(f"expected a 2-D dense array; received shape {values.shape}")
        idx = index_dtype(*values.shape, values.size)
        if nse is not None and nse > 0 and values.size == 0:
            raise ValueError(f"nse={nse} stored entries need a matrix with cells; received "
                             f"shape {values.shape}")
        if nse is None:
            if not is_concrete(values):
                raise ValueError("fromdense inside jit needs nse= (the number of stored entries)")
            row, col = (jnp.asarray(a, idx) for a in np.nonzero(np.asarray(values)))
            data = values[row, col]
        else:
            row, col = (a.astype(idx) for a in jnp.nonzero(values, size=nse, fill_value=0))
            kept = jnp.arange(nse) < jnp.count_nonzero(values)
            data = jnp.where(kept, values[row, col], 0).astype(values.dtype)
        return cls._make(with_unit(data, unit), row, col, shape=values.shape)

    @classmethod
    def from_scipy(cls, matrix):
        """Build from any ``scipy.sparse`` matrix or array; keeps duplicates and order of COO."""
        import scipy.sparse as sp
        if not sp.issparse(matrix):
            raise TypeError(f"from_scipy expects a scipy.sparse matrix; received "
                            f"{type_name(matrix)}")
        coo = matrix.tocoo()
        m, n = coo.shape
        idx = index_dtype(m, n, coo.nnz)
        return cls._make(jnp.asarray(coo.data), jnp.asarray(coo.row, idx),
                         jnp.asarray(coo.col, idx), shape=(m, n))

    def todense(self):
        w, unit = split_unit(self.full_data())
        if w.dtype == jnp.bool_:  # duplicates combine with logical or, as in scipy
            hits = jnp.zeros(self.shape, jnp.int32).at[self.row, self.col].add(w.astype(jnp.int32))
            return hits > 0
        dense = jnp.zeros(self.shape, w.dtype).at[self.row, self.col].add(w)
        return with_unit(dense, unit)

    def _grouping(self, pre: bool):
        if pre:
            return grouping('coo-row', (self.row, self.col), lambda r, c: (r, c), self.shape[0])
        return grouping('coo-col', (self.row, self.col), lambda r, c: (c, r), self.shape[1])

    def transpose(self, axes=None):
        """The transposed matrix (a view: row and col swap)."""
        if axes is not None and tuple(axes) != (1, 0):
            raise ValueError(f"a matrix transposes with axes=(1, 0) only; received {axes!r}")
        return COO._make(self.data, self.col, self.row, shape=self.shape[::-1],
                         backend=self.backend)

    # -- structure -------------------------------------------------------
    def check_format(self, full_check: bool = True):
        """Check index ranges and lengths (eager; raises ``ValueError`` on the first problem)."""
        if self.row.shape != self.col.shape:
            raise ValueError(f"row and col lengths differ: {self.row.shape[0]} and "
                             f"{self.col.shape[0]}")
        check_data(self.data, self.nnz)
        if full_check:
            for name, ids, extent in (('row', self.row, self.shape[0]),
                                      ('col', self.col, self.shape[1])):
                check_index_range(ids, extent, name)

    def _canonical_order(self):
        return jnp.lexsort((self.col, self.row))

    def sort_indices(self):
        """Entries sorted by row, then column (returns a new matrix; works in jit)."""
        order = self._canonical_order()
        w, unit = split_unit(self.data)
        data = w if self.is_homogeneous else w[order]
        return COO._make(with_unit(data, unit), self.row[order], self.col[order],
                         shape=self.shape, backend=self.backend)

    def sum_duplicates(self):
        """Merge entries at the same position and sort them (eager; returns a new matrix)."""
        eager_only(self, 'sum_duplicates')
        row, col = np.asarray(self.row), np.asarray(self.col)
        w, unit = split_unit(self.full_data())
        w = np.asarray(w)
        order = np.lexsort((col, row))
        row, col, w = row[order], col[order], w[order]
        first = np.ones(row.shape, bool)
        first[1:] = (row[1:] != row[:-1]) | (col[1:] != col[:-1])
        starts = np.flatnonzero(first)
        if starts.size == self.nnz and self.is_homogeneous:
            data = self.data
        else:
            data = with_unit(jnp.asarray(np.add.reduceat(w, starts) if starts.size else w), unit)
        return COO._make(data, jnp.asarray(row[starts], self.row.dtype),
                         jnp.asarray(col[starts], self.col.dtype), shape=self.shape,
                         backend=self.backend)

    def eliminate_zeros(self):
        """Drop entries whose weight is zero (eager; returns a new matrix)."""
        eager_only(self, 'eliminate_zeros')
        w, unit = split_unit(self.full_data())
        keep = np.flatnonzero(np.asarray(w) != 0)
        data = self.data if self.is_homogeneous and keep.size else with_unit(w[keep], unit)
        return COO._make(data, self.row[keep], self.col[keep], shape=self.shape,
                         backend=self.backend)

    def _groups(self):
        """Entries in canonical order, grouped by position (jit-able).

        Returns ``(order, r, c, first, seg, sums)``: the sorting permutation, the
        sorted coordinates, whether each sorted entry starts its position's group,
        the group of each sorted entry, and each group's summed weight.
        """
        w, _ = split_unit(self.full_data())
        order = self._canonical_order()
        r, c = self.row[order], self.col[order]
        first = jnp.concatenate([jnp.ones(min(self.nnz, 1), bool),
                                 (r[1:] != r[:-1]) | (c[1:] != c[:-1])])
        seg = jnp.cumsum(first) - 1
        sums = jax.ops.segment_sum(w[order], seg, num_segments=self.nnz)
        return order, r, c, first, seg, sums

    def merged_data(self):
        """Per-entry data in which each position's sum sits on its first entry (jit-able).

        Duplicates after the first become zeros; the matrix is unchanged. Element-wise
        operations that are not linear (``abs``) apply to these merged values, as scipy
        applies them after summing duplicates.
        """
        w, unit = split_unit(self.full_data())
        order, _, _, first, seg, sums = self._groups()
        merged = jnp.where(first, sums[seg], jnp.zeros_like(w))
        return with_unit(jnp.zeros_like(w).at[order].set(merged), unit)

    def _values_at(self, row, col):
        """This matrix's values at the positions ``(row, col)`` (duplicates summed; jit-able)."""
        w, unit = split_unit(self.full_data())
        if self.nnz == 0:
            return with_unit(jnp.zeros(row.shape, w.dtype), unit)
        _, r, c, _, seg, sums = self._groups()
        used = jnp.arange(self.nnz) <= seg[-1]
        ur = jnp.where(used, jnp.zeros_like(r).at[seg].set(r), self.shape[0])
        uc = jnp.where(used, jnp.zeros_like(c).at[seg].set(c), self.shape[1])
        lo = jnp.zeros(row.shape, jnp.int32)
        hi = jnp.full(row.shape, self.nnz, jnp.int32)
        for _ in range(int(self.nnz).bit_length()):  # binary search for (row, col)
            mid = (lo + hi) // 2
            less = (ur[mid] < row) | ((ur[mid] == row) & (uc[mid] < col))
            lo, hi = jnp.where(less, mid + 1, lo), jnp.where(less, hi, mid)
        at = jnp.minimum(lo, self.nnz - 1)
        found = (ur[at] == row) & (uc[at] == col)
        return with_unit(jnp.where(found, sums[at], 0), unit)

    def _matmul_call(self, w, b, info, backend):
        return coo_matmul.bind(w, self.row, self.col, b, info=info, backend=backend)[0]


def eager_only(matrix, method: str):
    if not is_concrete(matrix):
        raise ValueError(f"{method}() inspects index values and runs outside jit only")


def check_index_range(ids, extent: int, name: str):
    """Raise unless every value of ``ids`` lies in ``[0, extent)`` (eager)."""
    eager_only(ids, 'check_format')
    ids = np.asarray(ids)
    if ids.size and (ids.min() < 0 or ids.max() >= extent):
        bad = ids[(ids < 0) | (ids >= extent)][0]
        raise ValueError(f"{name} contains {int(bad)}, outside [0, {extent}); every {name} index "
                         f"must be non-negative and less than {extent}")


def _coo_coords(row, col, *, shape):
    return row, col


coo_matmul = coordinate_kernel('coo_matmul', _coo_coords)
register_products(COO, coo_matmul)
update_coo_on_binary_pre = format_update(COO, pre=True)
update_coo_on_binary_post = format_update(COO, pre=False)

if numba_available:
    from ._numba import coo_body, register_numba
    register_numba(coo_matmul, coo_body)
