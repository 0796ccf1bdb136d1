"""Fixed number of connections per neuron: FixedPostNumConn, and FixedPreNumConn as its view.

A :class:`FixedPostNumConn` of shape ``(num_pre, num_post)`` stores
``indices`` of shape ``(num_pre, conn_num)``, the targets of each presynaptic
neuron, and ``data`` of the same shape (or ``(1,)``: one weight for all). It is
a CSR matrix whose rows all hold ``conn_num`` entries: row ``i`` starts at
``i * conn_num``, so its products run the CSR kernels' regular variant, which
reads no row pointers. :class:`FixedPreNumConn` is the transposed view (every
postsynaptic neuron has ``conn_num`` sources), as CSC is of CSR.

Generation
----------
The seeded constructor draws each row's targets from a counter-based integer
hash (the generator of :mod:`._jitc_random`): value ``t`` of row ``i`` is
``draw(row_key(seed, i), t)``, mapped to ``[0, n)`` by the high word of its
product with ``n`` (each target is drawn with probability within ``n / 2**32``
relative of ``1 / n``). Without replacement a row takes the first
``conn_num`` distinct values of its stream, which is a uniformly random
``conn_num``-subset: the stream is drawn ``K`` values at a time (``K`` a little
over what gives ``conn_num`` distinct values except with probability about
``1e-11``; a row that falls short draws its next ``K``), sorted with the draw
position packed into the low bits, and the first occurrences of the earliest
values are kept. When ``conn_num > n / 2`` the excluded ``n - conn_num``
columns are drawn instead. The cost is ``O(num_pre * conn_num)`` work plus a
sort of each row; every operation is integer arithmetic, so every platform and
backend builds the same matrix from the same seed.
"""

import math
import numbers
from functools import partial

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._misc import (as_index_array, check_seed, check_shape, index_dtype, is_concrete,
                     split_unit, type_name, with_unit)
from ..backends._numba_ffi import numba_available
from ._base import SparseMatrix, _numeric, register_products
from ._coo import COO, check_index_range, convert_arg, eager_only
from ._csr import CSR
from ._jitc_random import draw, mix, mul_wide, row_keys
from ._plasticity import grouping, regular_grouping
from ._matmul import (coordinate_impl, coordinate_weight_ct, event_values, indexed_kernel,
                      masked_impl, matmul_kernel)

__all__ = ['FixedPostNumConn', 'FixedPreNumConn']

FIXED_SALT = 0xA54FF53A


# ---------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------

def _draw_count(n: int, k: int) -> int:
    """Draws per row after which ``k`` of ``n`` values are distinct but with probability ~1e-11.

    The number of distinct values among ``K`` uniform draws has mean
    ``n (1 - q1)`` and variance ``n (n - 1) q2 + n q1 - n**2 q1**2`` with
    ``q1 = (1 - 1/n)**K`` and ``q2 = (1 - 2/n)**K``; ``K`` is the smallest count
    whose mean lies 7 standard deviations plus 5 above ``k`` (``k <= n / 2``),
    at most ``4 k + 64`` (for small ``n``, whose ``n >= 2 k`` values that many
    draws cover all but with negligible probability).
    """
    def enough(draws):
        q1, q2 = (1 - 1 / n) ** draws, (1 - 2 / n) ** draws
        mean = n * (1 - q1)
        var = max(n * (n - 1) * q2 + n * q1 - n * n * q1 * q1, 0.0)
        return mean - 7 * math.sqrt(var) - 5 >= k

    lo, hi = k, 4 * k + 64
    if not enough(hi):  # small n: 4k + 64 draws of n <= 2k values are plenty
        return hi
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if enough(mid) else (mid + 1, hi)
    return lo


def _below(bits, n: int):
    """Uniform 32-bit values mapped to ``[0, n)``: the high word of ``bits * n``."""
    return mul_wide(bits, jnp.uint32(n))[0]


def _running_count(flags):
    """Cumulative count of True along axis 1 (an associative scan: faster than cumsum on CPU)."""
    return lax.associative_scan(jnp.add, flags.astype(jnp.int32), axis=1)


def _distinct(keys, n: int, k: int):
    """``(m, k)`` sorted distinct values in ``[0, n)`` per row: the first ``k`` distinct
    values of each row's stream (``0 < k <= n / 2``)."""
    m = keys.shape[0]
    draws = _draw_count(n, k)
    pos_bits = max(1, (draws - 1).bit_length())
    packed = n << pos_bits <= 1 << 32  # value and draw position fit in one uint32 sort key
    pos = jnp.arange(draws, dtype=jnp.uint32)
    rows = jnp.arange(m)[:, None]

    def attempt(a):
        values = _below(draw(keys, a * jnp.uint32(draws) + pos), n)
        if packed:
            s = jnp.sort((values << pos_bits) | pos, axis=1)
            sv, spos = s >> pos_bits, s & jnp.uint32((1 << pos_bits) - 1)
        else:
            sv, spos = lax.sort((values, jnp.broadcast_to(pos, values.shape)), dimension=1,
                                num_keys=2)
        # in sorted order the first of equal values is the earliest draw of that value
        first = jnp.concatenate([jnp.ones((m, 1), bool), sv[:, 1:] != sv[:, :-1]], axis=1)
        first_in_draw_order = jnp.zeros((m, draws), bool).at[rows, spos].set(first)
        seen = _running_count(first_in_draw_order)  # distinct values so far
        last = jnp.argmax(seen >= k, axis=1).astype(jnp.uint32)  # draw giving the k-th one
        keep = first & (spos <= last[:, None])
        slot = jnp.where(keep, _running_count(keep) - 1, k)
        out = jnp.zeros((m, k), jnp.uint32).at[rows, slot].set(sv, mode='drop')
        return out, seen[:, -1] >= k

    out, ok = attempt(jnp.uint32(0))

    def again(state):
        out, ok, a = state
        new, new_ok = attempt(a)
        return jnp.where(ok[:, None], out, new), ok | new_ok, a + 1

    out, _, _ = lax.while_loop(lambda s: ~jnp.all(s[1]), again, (out, ok, jnp.uint32(1)))
    return out


def _complement(excluded, n: int):
    """The sorted values of ``[0, n)`` missing from each row of ``excluded`` (distinct)."""
    m, e = excluded.shape
    rows = jnp.arange(m)[:, None]
    present = jnp.ones((m, n), bool).at[rows, excluded].set(False)
    slot = jnp.where(present, _running_count(present) - 1, n - e)
    values = jnp.broadcast_to(jnp.arange(n, dtype=jnp.uint32), (m, n))
    return jnp.zeros((m, n - e), jnp.uint32).at[rows, slot].set(values, mode='drop')


@partial(jax.jit, static_argnames=('m', 'n', 'k', 'replace', 'self_connections'))
def _generate(seed, *, m: int, n: int, k: int, replace: bool, self_connections: bool):
    """``(m, k)`` int32 column indices, sorted within each row."""
    choices = n if self_connections else n - 1
    dtype = index_dtype(m, n, m * k)
    if m == 0 or k == 0:
        return jnp.zeros((m, k), dtype)
    rows = jnp.arange(m, dtype=jnp.uint32)
    keys = row_keys(mix(seed.astype(jnp.uint32) ^ jnp.uint32(FIXED_SALT)), rows)[:, None]
    if replace:
        cols = jnp.sort(_below(draw(keys, jnp.arange(k, dtype=jnp.uint32)), choices), axis=1)
    elif k == choices:
        cols = jnp.broadcast_to(jnp.arange(k, dtype=jnp.uint32), (m, k))
    elif 2 * k <= choices:
        cols = _distinct(keys, choices, k)
    else:
        cols = _complement(_distinct(keys, choices, choices - k), choices)
    if not self_connections:  # skip the diagonal: values from i on move up by one
        cols = cols + (cols >= rows[:, None]).astype(jnp.uint32)
    return cols.astype(dtype)


def _count(value, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be a non-negative int; received {value!r} "
                        f"({type_name(value)})")
    if value < 0:
        raise ValueError(f"{name} must be non-negative; received {value}")
    return int(value)


def _flag(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; received {value!r} ({type_name(value)})")
    return bool(value)


def _generated_weights(weight, seed, shape, dtype):
    """``weight`` as stored data: a scalar -> (1,), an array of ``shape``, or drawn by a callable."""
    if callable(weight) and not isinstance(weight, (jax.Array, np.ndarray, u.Quantity)):
        key = jax.random.fold_in(jax.random.key(seed), FIXED_SALT)
        weight = weight(key, shape)
    return _fixed_data(weight, shape, dtype, name='weight')


def _fixed_data(data, shape, dtype=None, name='data'):
    """Validated weights: a scalar -> ``(1,)``; ``shape`` or ``(prod(shape),)`` -> ``shape``."""
    arr, unit = _numeric(data, name)
    if dtype is not None:
        arr = arr.astype(dtype)
    elif not jnp.issubdtype(arr.dtype, jnp.inexact) and arr.dtype != jnp.bool_:
        arr = arr.astype(jnp.zeros((), float).dtype)  # integer weights compute as floats
    if arr.ndim == 0 or (arr.shape == (1,) and math.prod(shape) != 1):
        arr = arr.reshape(1)
    elif arr.shape == (math.prod(shape),):
        arr = arr.reshape(shape)
    elif arr.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)} (one weight per synapse) or be "
                         f"a scalar (one weight for all); received shape {arr.shape}")
    return with_unit(arr, unit)


# ---------------------------------------------------------------------------
# Products: one kernel, rows of equal length
# ---------------------------------------------------------------------------

def _fixed_coords(indices, *, shape):
    m, c = indices.shape
    rows = jnp.broadcast_to(jnp.arange(m, dtype=indices.dtype)[:, None], (m, c))
    return rows.reshape(-1), indices.reshape(-1)


def _fixed_impl(w, indices, b, *, info):
    """Reference: ``A @ B`` gathers each row's ``c`` operands; ``B @ A`` scatters."""
    if info.transpose:
        return coordinate_impl(_fixed_coords, w, indices, b, info=info)
    m, c = indices.shape
    w = jnp.broadcast_to(w, (m * c,)).reshape(m, c)
    gathered = event_values(b, info.event, w.dtype)[indices]  # (m, c) or (m, c, k)
    if b.ndim == 1:
        return [jnp.sum(w * gathered, axis=1)]
    return [jnp.einsum('mc,mck->mk', w, gathered, precision=lax.Precision.HIGHEST)]


fixed_matmul = matmul_kernel('fixed_matmul', _fixed_impl, partial(coordinate_weight_ct,
                                                                    _fixed_coords))
fixed_indexed_matmul = indexed_kernel('fixed_indexed_matmul', partial(masked_impl, _fixed_impl),
                                      partial(coordinate_weight_ct, _fixed_coords))


# ---------------------------------------------------------------------------
# The classes
# ---------------------------------------------------------------------------

_GENERATOR_ARGS = ('num_pre', 'num_post', 'conn_num', 'weight', 'seed')
_GENERATOR_OPTIONS = ('allow_self_connections', 'replace')


class _FixedNumConn(SparseMatrix):
    """Storage shared by both orientations: rows of ``conn_num`` entries along ``_major``.

    ``_major`` is 0 when the rows are presynaptic neurons (FixedPostNumConn) and
    1 when they are postsynaptic ones (FixedPreNumConn).
    """

    _fields = ('data', 'indices')
    _major: int

    def __init__(self, *args, shape=None, dtype=None, **kwargs):
        name = type(self).__name__
        generator = bool(kwargs) or len(args) > 2 or (
            bool(args) and isinstance(args[0], (numbers.Integral, np.integer))
            and not isinstance(args[0], (bool, np.bool_)))
        if generator:
            if shape is not None:
                raise TypeError(f"{name}(num_pre, num_post, conn_num, ...) takes no shape=; "
                                f"the shape is (num_pre, num_post)")
            data, indices, shape = self._generate(name, args, kwargs, dtype)
        else:
            if len(args) != 1:
                raise TypeError(f"{name} expects (data, indices) with shape=, a sparse or dense "
                                f"matrix, or (num_pre, num_post, conn_num, weight, seed); "
                                f"received {len(args)} positional arguments")
            arg = args[0]
            matrix = convert_arg(type(self), arg, shape, dtype)
            if matrix is not None:
                self._set(matrix.data, matrix.indices, shape=matrix.shape)
                return
            if len(arg) != 2:
                raise TypeError(f"{name} expects (data, indices); received a tuple of "
                                f"{len(arg)} ({', '.join(type_name(a) for a in arg)})")
            if shape is None:
                raise ValueError(f"{name}((data, indices), shape=(num_pre, num_post)) needs shape")
            shape = check_shape(shape)
            data, indices = arg
            indices = as_index_array(indices, 'indices', ndim=2)
            major = shape[self._major]
            if indices.shape[0] != major:
                side = 'num_pre' if self._major == 0 else 'num_post'
                raise ValueError(f"indices must have shape ({side}, conn_num) with {side} = "
                                 f"{major}; received shape {indices.shape}")
            data = _fixed_data(data, indices.shape, dtype)
        self._set(data, indices, shape=shape)

    @classmethod
    def _generate(cls, name, args, kwargs, dtype):
        names = _GENERATOR_ARGS + _GENERATOR_OPTIONS
        if len(args) > len(_GENERATOR_ARGS):
            raise TypeError(f"{name}() takes at most {len(_GENERATOR_ARGS)} positional arguments "
                            f"({', '.join(_GENERATOR_ARGS)}); received {len(args)}")
        values = dict(zip(names, args))
        for key, value in kwargs.items():
            if key not in names:
                raise TypeError(f"{name}() got an unexpected keyword argument {key!r}; expected "
                                f"one of {', '.join(names)}")
            if key in values:
                raise TypeError(f"{name}() got multiple values for argument {key!r}")
            values[key] = value
        missing = [k for k in ('num_pre', 'num_post', 'conn_num') if k not in values]
        if missing:
            raise TypeError(f"{name}() is missing {', '.join(missing)}")
        num_pre, num_post, conn_num = (_count(values[k], k)
                                       for k in ('num_pre', 'num_post', 'conn_num'))
        self_connections = _flag(values.get('allow_self_connections', True),
                                 'allow_self_connections')
        replace = _flag(values.get('replace', False), 'replace')
        # rows are the side whose count is fixed: presynaptic for FixedPost, else postsynaptic
        m, n = (num_pre, num_post) if cls._major == 0 else (num_post, num_pre)
        if not self_connections and num_pre != num_post:
            raise ValueError(f"allow_self_connections=False needs num_pre == num_post (one "
                             f"population); received num_pre={num_pre}, num_post={num_post}")
        choices = n if self_connections else n - 1
        if not replace and conn_num > choices and m > 0:
            side = 'num_post' if cls._major == 0 else 'num_pre'
            extra = '' if self_connections else ' - 1 (no self-connections)'
            raise ValueError(f"conn_num={conn_num} exceeds the {choices} distinct choices of each "
                             f"neuron ({side}{extra}); lower it or pass replace=True")
        if replace and conn_num > 0 and m > 0 and choices == 0:
            raise ValueError(f"conn_num={conn_num} connections cannot be drawn from 0 neurons")
        seed = check_seed(values.get('seed', 0))
        indices = _generate(seed, m=m, n=n, k=conn_num, replace=replace,
                            self_connections=self_connections)
        data = _generated_weights(values.get('weight', 1.0), seed, (m, conn_num), dtype)
        return data, indices, (num_pre, num_post)

    # -- structure -------------------------------------------------------
    @property
    def conn_num(self) -> int:
        """The number of connections of each neuron on the fixed side."""
        return self.indices.shape[1]

    @property
    def nnz(self) -> int:
        return self.indices.shape[0] * self.indices.shape[1]

    @property
    def is_homogeneous(self) -> bool:
        return split_unit(self.data)[0].ndim == 1

    def _stored_shape(self):
        """The shape of the FixedPostNumConn whose arrays these are."""
        return self.shape if self._major == 0 else self.shape[::-1]

    def _flat_data(self):  # the kernels read one weight per entry, row by row
        w, unit = split_unit(self.data)
        return with_unit(w.reshape(-1), unit)

    def full_data(self):
        """The weights as one value per entry, row by row (shape ``(nnz,)``)."""
        w, unit = split_unit(self._flat_data())
        return with_unit(jnp.broadcast_to(w, (self.nnz,)), unit)

    def with_data(self, data):
        """Same structure, new weights: a scalar, shape ``indices.shape`` or ``(nnz,)``."""
        return self._make(_fixed_data(data, self.indices.shape), self.indices, shape=self.shape,
                          backend=self.backend)

    def check_format(self, full_check: bool = True):
        """Check the index range of every entry (eager; ``ValueError`` on the first problem)."""
        if not full_check:
            return
        eager_only(self, 'check_format')
        check_index_range(self.indices.reshape(-1), self._stored_shape()[1], 'indices')

    def _grouping(self, pre: bool):
        if pre == (self._major == 0):  # the stored rows are the spiking side
            return regular_grouping(self.indices)
        return grouping('fixed-minor', (self.indices,),
                        lambda idx: (idx.reshape(-1), _fixed_coords(idx, shape=None)[0]),
                        self._stored_shape()[1])

    # -- conversions -----------------------------------------------------
    def _stored_coo(self):
        rows, cols = _fixed_coords(self.indices, shape=None)
        return COO._make(self._flat_data(), rows, cols, shape=self._stored_shape(),
                         backend=self.backend)

    def tocoo(self):
        coo = self._stored_coo()
        return coo if self._major == 0 else coo.transpose()

    @classmethod
    def fromcoo(cls, coo):
        """Build from a COO whose every row (columns for FixedPreNumConn) holds as many entries.

        Inside ``jit`` the counts cannot be checked before they are known: unequal
        counts then give NaN weights.
        """
        stored = coo if cls._major == 0 else coo.transpose()
        m, n = stored.shape
        rows_word = 'row' if cls._major == 0 else 'column'
        if m == 0 and stored.nnz:
            raise ValueError(f"a matrix of shape {coo.shape} cannot hold entries")
        csr = CSR.fromcoo(stored)  # rows grouped as CSR; equal rows then reshape to (m, c)
        counts = jnp.diff(csr.indptr)
        c = stored.nnz // m if m else 0
        if is_concrete(counts) and m and np.any(np.asarray(counts) != np.asarray(counts)[0]):
            counts = np.asarray(counts)
            bad = int(np.flatnonzero(counts != counts[0])[0])
            raise ValueError(f"{cls.__name__} needs the same number of entries in every "
                             f"{rows_word}; {rows_word} 0 holds {int(counts[0])} but {rows_word} "
                             f"{bad} holds {int(counts[bad])} (counts range from {counts.min()} "
                             f"to {counts.max()})")
        if m and stored.nnz % m:  # traced counts: only the total can be checked here
            raise ValueError(f"{cls.__name__} needs the same number of entries in every "
                             f"{rows_word}; {stored.nnz} entries do not divide among {m} "
                             f"{rows_word}s")
        w, unit = split_unit(csr.data)
        data = w if stored.is_homogeneous else w.reshape(m, c)
        if not is_concrete(counts) and jnp.issubdtype(data.dtype, jnp.inexact):
            data = jnp.where(jnp.all(counts == c), data, jnp.nan)
        indices = csr.indices.reshape(m, c)
        post = FixedPostNumConn._make(with_unit(data, unit), indices, shape=(m, n))
        return post if cls._major == 0 else post.transpose()

    def transpose(self, axes=None):
        """The transposed matrix: the other orientation's view of the same arrays (no copy)."""
        if axes is not None and tuple(axes) != (1, 0):
            raise ValueError(f"a matrix transposes with axes=(1, 0) only; received {axes!r}")
        other = FixedPreNumConn if self._major == 0 else FixedPostNumConn
        return other._make(self.data, self.indices, shape=self.shape[::-1], backend=self.backend)

    def _stored_csr(self):
        """The CSR of the stored orientation (its row pointers are multiples of conn_num)."""
        m, c = self.indices.shape
        indptr = jnp.arange(m + 1, dtype=self.indices.dtype) * c
        return CSR._make(self.full_data() if self.is_homogeneous else self._flat_data(),
                         self.indices.reshape(-1), indptr, shape=self._stored_shape(),
                         backend=self.backend)

    def to_scipy(self):
        """The equivalent ``scipy.sparse`` array: CSR rows (FixedPost) or CSC columns (FixedPre)."""
        import scipy.sparse as sp
        m, c = self.indices.shape
        arrays = (self._scipy_data(), np.asarray(self.indices).reshape(-1),
                  np.arange(m + 1) * c)
        cls = sp.csr_array if self._major == 0 else sp.csc_array
        return cls(arrays, shape=self.shape)


@jax.tree_util.register_pytree_node_class
class FixedPostNumConn(_FixedNumConn):
    """Every presynaptic neuron has exactly ``conn_num`` postsynaptic targets.

    A sparse matrix of shape ``(num_pre, num_post)`` stored as ``indices`` of
    shape ``(num_pre, conn_num)`` (the targets of each row) and ``data`` of the
    same shape, or ``(1,)`` when every synapse has the same weight. Products
    visit ``conn_num`` entries per spiking neuron, with no row pointers.

    Constructor forms::

        FixedPostNumConn(num_pre, num_post, conn_num, weight=1.0, seed=0, *,
                         allow_self_connections=True, replace=False, dtype=None)
        FixedPostNumConn((data, indices), shape=(num_pre, num_post))
        FixedPostNumConn(csr_or_coo_or_scipy_or_dense)  # every row the same count

    The generator draws ``conn_num`` distinct targets per row uniformly
    (``replace=True``: independently, repeats allowed), sorted within the row;
    ``allow_self_connections=False`` (square matrices) leaves out ``(i, i)``.
    ``weight`` is a scalar (stored once), an array of shape
    ``(num_pre, conn_num)``, or a callable ``weight(key, shape)`` given a JAX
    PRNG key derived from ``seed``; brainunit quantities keep their unit. The
    same arguments give the same matrix in every process and on every backend;
    ``seed`` may be traced (the constructor works inside ``jax.jit``); the cost
    is ``O(num_pre * conn_num)``.

    Examples
    --------
    >>> import jax.numpy as jnp, brainevent
    >>> w = brainevent.FixedPostNumConn(num_pre=5, num_post=8, conn_num=3, weight=0.5, seed=1)
    >>> w.indices.shape, w.nnz
    ((5, 3), 15)
    >>> spikes = brainevent.BinaryArray(jnp.array([1, 0, 0, 1, 0]))
    >>> bool(jnp.allclose(spikes @ w, spikes.value @ w.todense()))
    True
    >>> brainevent.FixedPostNumConn((jnp.ones((2, 1)), jnp.array([[2], [0]])), shape=(2, 3)).todense()
    Array([[0., 0., 1.],
           [1., 0., 0.]], dtype=float32)
    """

    format = 'fixed_post'
    _major = 0

    def tocsr(self):
        """The CSR of the same entries (row pointers computed, arrays shared)."""
        return self._stored_csr()

    def _matmul_call(self, w, b, info, backend):
        return fixed_matmul.bind(w, self.indices, b, info=info, backend=backend)[0]

    def _indexed_call(self, w, ev_indices, ev_count, info, backend):
        return fixed_indexed_matmul.bind(w, self.indices, ev_indices, ev_count, info=info,
                                         backend=backend)[0]


@jax.tree_util.register_pytree_node_class
class FixedPreNumConn(_FixedNumConn):
    """Every postsynaptic neuron has exactly ``conn_num`` presynaptic sources.

    The transposed view of :class:`FixedPostNumConn`: a matrix of shape
    ``(num_pre, num_post)`` whose ``indices`` have shape ``(num_post,
    conn_num)`` (the sources of each postsynaptic neuron). The generator
    ``FixedPreNumConn(num_pre, num_post, conn_num, weight, seed, ...)`` gives
    ``FixedPostNumConn(num_post, num_pre, conn_num, weight, seed, ...).T``;
    ``.T`` converts between the two for free. ``W @ x`` (each postsynaptic
    neuron gathering from its sources) is this layout's natural product.

    Examples
    --------
    >>> import jax.numpy as jnp, brainevent
    >>> w = brainevent.FixedPreNumConn(num_pre=6, num_post=4, conn_num=2, seed=0)
    >>> w.shape, w.indices.shape
    ((6, 4), (4, 2))
    >>> w.sum(axis=0)  # every postsynaptic neuron has two sources of weight 1
    Array([2., 2., 2., 2.], dtype=float32)
    """

    format = 'fixed_pre'
    _major = 1

    def tocsc(self):
        """The CSC of the same entries (column pointers computed, arrays shared)."""
        return self._stored_csr().transpose()

    def _matmul_call(self, w, b, info, backend):
        flipped = info._replace(shape=info.shape[::-1], transpose=not info.transpose)
        if b.ndim == 1:
            return fixed_matmul.bind(w, self.indices, b, info=flipped, backend=backend)[0]
        return fixed_matmul.bind(w, self.indices, b.T, info=flipped, backend=backend)[0].T


register_products(FixedPostNumConn, fixed_matmul, indexed=fixed_indexed_matmul)
register_products(FixedPreNumConn, fixed_matmul)

if numba_available:
    from ._numba import csr_body, csr_indexed_body, register_numba
    register_numba(fixed_matmul, csr_body, regular=True)
    register_numba(fixed_indexed_matmul, csr_indexed_body, regular=True)
