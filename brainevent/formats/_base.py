"""The base class of every sparse format and the product path they share.

Conversion contract (the hub): each format defines ``tocoo()`` and the class
method ``fromcoo(coo)``; ``todense``, ``tocsr``, ``tocsc`` and ``asformat`` are
derived here, and a format overrides one only where its own path is cheaper.
Each format also defines ``with_data``, ``transpose``, ``nnz``, the pytree
methods and ``_matmul_call`` (its products' kernel call).
"""

import numbers

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

from .._misc import as_numeric, is_concrete, split_unit, type_name, with_unit
from ..events._binary import BinaryArray
from ..events._dispatch import MatmulOperators, register_matmul
from ..events._indexed import IndexedBinary1d, IndexedBinary2d
from ._matmul import MatmulInfo

__all__ = ['SparseMatrix', 'product', 'register_products', 'check_data', 'FORMATS']

FORMATS: dict[str, type] = {}

# Right and left operands every format takes in products.
OPERANDS = (BinaryArray, IndexedBinary1d, IndexedBinary2d, jax.Array, np.ndarray)
INDEXED = (IndexedBinary1d, IndexedBinary2d)


def _float_dtype():
    return jnp.zeros((), float).dtype  # float32, or float64 with jax_enable_x64


def _numeric(x, name):
    """``(mantissa, unit)`` of ``x``, the mantissa a JAX array with a numeric or bool dtype."""
    mantissa, unit = split_unit(x)
    return as_numeric(mantissa, name), unit


def check_data(data, nnz: int, dtype=None):
    """Validate ``data`` for ``nnz`` entries: shape ``(nnz,)``, or a scalar (homogeneous)."""
    arr, unit = _numeric(data, 'data')
    if dtype is not None:
        arr = arr.astype(dtype)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or arr.shape[0] not in (nnz, 1):
        raise ValueError(f"data must have shape ({nnz},) (one weight per entry) or be a scalar "
                         f"(one weight for all); received shape {arr.shape}")
    return with_unit(arr, unit)


def event_operand(x):
    """``(values, event)`` for any product operand."""
    if isinstance(x, BinaryArray):
        return x.value, True
    if isinstance(x, (IndexedBinary1d, IndexedBinary2d)):
        return x.todense(), True
    return x, False


def _check_operand(operand_shape, shape, transpose):
    side = 'left' if transpose else 'right'
    if len(operand_shape) not in (1, 2):
        raise ValueError(f"matmul: the {side} operand must be 1-D or 2-D; received shape "
                         f"{operand_shape}")
    size = operand_shape[-1] if transpose else operand_shape[0]
    expected = shape[0] if transpose else shape[1]
    if size != expected:
        axis = 'last' if transpose else 'first'
        raise ValueError(f"matmul: the {side} operand has shape {operand_shape}, but its {axis} "
                         f"dimension must equal {expected} for a matrix of shape {shape}")


def _weights(weights, operand_dtype=None):
    """``(w, unit)`` in the product's dtype: the weights' own for events, else promoted
    with the operand's; bool weights compute in the default float dtype."""
    w, unit = _numeric(weights, 'data')
    dtype = w.dtype if operand_dtype is None else jnp.result_type(w.dtype, operand_dtype)
    return w.astype(_float_dtype() if dtype == jnp.bool_ else dtype), unit


def product(weights, operand, *, shape, transpose: bool, call, backend=None, indexed_call=None):
    """Shared body of every product: validation, dtypes and units around a kernel call.

    ``call(w, b, info, backend)`` runs the layout's kernel on unitless arrays.
    ``transpose=True`` computes ``operand @ A``, otherwise ``A @ operand``. Indexed
    events on the left go to ``indexed_call(w, ev_indices, ev_count, info, backend)``
    when the layout has one, which loops over the stored indices only.
    """
    if (indexed_call is not None and transpose and
            isinstance(operand, (IndexedBinary1d, IndexedBinary2d))):
        _check_operand(operand.shape, shape, transpose)
        w, w_unit = _weights(weights)
        count = operand.count.reshape(-1).astype(jnp.int32)
        info = MatmulInfo(tuple(shape), True, True)
        return with_unit(indexed_call(w, operand.indices, count, info, backend), w_unit)
    values, event = event_operand(operand)
    values, b_unit = _numeric(values, 'the operand of @')
    _check_operand(values.shape, shape, transpose)
    w, w_unit = _weights(weights, None if event else values.dtype)
    b = values if event else values.astype(w.dtype)
    out = call(w, b, MatmulInfo(tuple(shape), bool(transpose), event), backend)
    return with_unit(out, w_unit * b_unit)


def register_products(cls, kernel, indexed=None) -> None:
    """Register ``cls @ operand`` and ``operand @ cls`` for every operand type.

    ``indexed`` is the kernel that runs indexed events on the left, if any.
    """
    for operand in OPERANDS:
        left_kernel = indexed if indexed is not None and operand in INDEXED else kernel
        register_matmul(cls, operand,
                        lambda a, b, backend=None: a._product(b, transpose=False, backend=backend),
                        kernel)
        register_matmul(operand, cls,
                        lambda a, b, backend=None: b._product(a, transpose=True, backend=backend),
                        left_kernel)


def _is_scalar(x) -> bool:
    if isinstance(x, (numbers.Number, np.number, np.bool_)):
        return True
    return hasattr(x, 'ndim') and not isinstance(x, SparseMatrix) and x.ndim == 0


class SparseMatrix(MatmulOperators, u.sparse.SparseMatrix):
    """Base class of the sparse formats (COO, CSR, CSC).

    Mirrors the ``scipy.sparse`` array interface where it makes sense for JAX:
    matrices are immutable pytrees, so methods that scipy runs in place return
    a new matrix here.

    Examples
    --------
    >>> import jax.numpy as jnp, brainevent
    >>> m = brainevent.CSR(jnp.array([[0., 2.], [3., 0.]]))
    >>> isinstance(m, brainevent.SparseMatrix), m.format, m.nnz
    (True, 'csr', 2)
    >>> (m * 2).sum(axis=0)
    Array([6., 4.], dtype=float32)
    """

    format: str = ''
    _fields: tuple[str, ...]  # the array attributes, in pytree order; data first

    backend: str | None = None  # the matrix's backend for its products (None: the default)

    def _set(self, *arrays, shape, backend=None):
        for name, value in zip(self._fields, arrays):
            setattr(self, name, value)
        self.shape = tuple(shape)
        self.backend = backend

    @classmethod
    def _make(cls, *arrays, shape, backend=None):
        """Build from validated arrays without checks (pytrees, conversions)."""
        obj = object.__new__(cls)
        obj._set(*arrays, shape=shape, backend=backend)
        return obj

    def _arrays(self) -> tuple:
        return tuple(getattr(self, name) for name in self._fields)

    def tree_flatten(self):
        return self._arrays(), (self.shape, self.backend)

    @classmethod
    def tree_unflatten(cls, aux, children):
        shape, backend = aux
        return cls._make(*children, shape=shape, backend=backend)

    def with_data(self, data):
        """Same structure, new weights (shape ``(nnz,)`` or a scalar; units allowed)."""
        return self._make(check_data(data, self.nnz), *self._arrays()[1:], shape=self.shape,
                          backend=self.backend)

    def with_backend(self, backend: str | None):
        """The same matrix, whose products run on ``backend`` unless a call says otherwise.

        ``None`` returns to the default (:mod:`brainevent.config`, else the fastest
        available backend).

        Examples
        --------
        >>> import jax.numpy as jnp, brainevent
        >>> w = brainevent.CSR(jnp.eye(2)).with_backend('jax')
        >>> w.backend, (brainevent.BinaryArray(jnp.array([1., 0.])) @ w).tolist()
        ('jax', [1.0, 0.0])
        """
        if backend is not None:
            from ..backends._kernel import check_backend_name
            from .._config import default_platform
            check_backend_name(backend, default_platform())
        return self._make(*self._arrays(), shape=self.shape, backend=backend)

    _hub = True  # False: not a target of asformat() (cannot be built from entries)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get('format') and cls._hub:
            FORMATS[cls.format] = cls

    # -- properties ------------------------------------------------------
    @property
    def dtype(self):
        return split_unit(self.data)[0].dtype

    @property
    def unit(self):
        """The unit of the weights (``brainunit.UNITLESS`` for plain arrays)."""
        return split_unit(self.data)[1]

    @property
    def ndim(self) -> int:
        return 2

    @property
    def nse(self) -> int:
        return self.nnz

    @property
    def is_homogeneous(self) -> bool:
        """True when one scalar weight is stored for every entry."""
        return split_unit(self.data)[0].shape[0] == 1 and self.nnz != 1

    def __repr__(self):
        unit = '' if self.unit.is_unitless else f", unit={self.unit}"
        return (f"{type(self).__name__}(shape={self.shape}, nnz={self.nnz}, "
                f"dtype={self.dtype}{unit})")

    def full_data(self):
        """The weights as one value per entry (homogeneous data broadcast)."""
        w, unit = split_unit(self.data)
        return with_unit(jnp.broadcast_to(w, (self.nnz,)), unit)

    # -- conversion hub --------------------------------------------------
    def tocoo(self):
        raise NotImplementedError

    @classmethod
    def fromcoo(cls, coo):
        raise NotImplementedError

    def todense(self):
        """The dense array (a Quantity when the weights have units)."""
        return self.tocoo().todense()

    def toarray(self):
        """Alias of :meth:`todense` (scipy's name)."""
        return self.todense()

    def asformat(self, format: str | None):
        """Convert to the format named ``format`` (``'coo'``, ``'csr'``, ``'csc'``)."""
        if format is None or format == self.format:
            return self
        if format not in FORMATS:
            raise ValueError(f"unknown format {format!r}; expected one of {sorted(FORMATS)}")
        return self._keep_backend(FORMATS[format].fromcoo(self.tocoo()))

    def _keep_backend(self, result):
        """``result`` with this matrix's backend choice."""
        return result if result.backend == self.backend else result.with_backend(self.backend)

    def tocsr(self):
        return self.asformat('csr')

    def tocsc(self):
        return self.asformat('csc')

    @classmethod
    def fromdense(cls, dense, nse: int | None = None):
        """Build from a 2-D dense array; inside ``jit`` give ``nse`` (stored entries).

        Examples
        --------
        >>> import jax.numpy as jnp, brainevent
        >>> brainevent.CSR.fromdense(jnp.array([[0., 1.], [2., 0.]])).nnz
        2
        """
        return cls.fromcoo(FORMATS['coo'].fromdense(dense, nse=nse))

    @classmethod
    def from_scipy(cls, matrix):
        """Build from any ``scipy.sparse`` matrix or array (converted to this format)."""
        return cls.fromcoo(FORMATS['coo'].from_scipy(matrix))

    def to_scipy(self):
        """The equivalent ``scipy.sparse`` array of the same format (unitless weights only)."""
        import scipy.sparse as sp
        data = self._scipy_data()
        coo = self.tocoo()
        return sp.coo_array((data, (np.asarray(coo.row), np.asarray(coo.col))),
                            shape=self.shape).asformat(self.format)

    def _scipy_data(self):
        if not self.unit.is_unitless:
            raise TypeError(f"scipy.sparse has no units, but the weights are in {self.unit}; "
                            f"convert first, e.g. m.with_data(m.data.to_decimal({self.unit}))")
        return np.asarray(self.full_data())

    # -- element-wise ----------------------------------------------------
    def astype(self, dtype):
        w, unit = split_unit(self.data)
        return self.with_data(with_unit(w.astype(dtype), unit))

    def copy(self):
        return jax.tree_util.tree_map(jnp.copy, self)

    def __neg__(self):
        return self.with_data(-self.data)

    def __pos__(self):
        return self

    def __abs__(self):
        """Absolute value of the matrix: duplicates are summed first, as in scipy."""
        coo = self.tocoo()
        return type(self).fromcoo(coo.with_data(abs(coo.merged_data())))

    def __getitem__(self, index):
        raise TypeError(f"{type(self).__name__} does not support indexing; use "
                        f"m.todense()[index] for dense values, or keep populations as separate "
                        f"blocks joined with brainevent.vstack / hstack")

    def __truediv__(self, other):
        if not _is_scalar(other):
            raise TypeError(f"a sparse matrix can be divided by a scalar only; received "
                            f"{type_name(other)} (use .multiply(1 / other) for element-wise)")
        return self.with_data(self.data / other)

    def __mul__(self, other):
        return self.multiply(other)

    def __rmul__(self, other):
        return self.multiply(other)

    def multiply(self, other):
        """Element-wise product with a scalar, a dense array or another sparse matrix.

        The result keeps this matrix's format and structure, as in scipy.
        """
        if _is_scalar(other):
            return self.with_data(self.data * other)
        coo = self.tocoo()
        if isinstance(other, SparseMatrix):
            self._check_same_shape(other, 'multiply')
            values = other.tocoo()._values_at(coo.row, coo.col)
        elif isinstance(other, (jax.Array, np.ndarray, u.Quantity)):
            if other.ndim > 2:
                raise ValueError(f"multiply: expected a 2-D operand; received shape {other.shape}")
            try:
                dense = u.math.broadcast_to(other, self.shape)
            except ValueError:
                raise ValueError(f"multiply: operand of shape {other.shape} does not broadcast "
                                 f"to the matrix shape {self.shape}") from None
            values = dense[coo.row, coo.col]
        else:
            return NotImplemented
        return type(self).fromcoo(coo.with_data(coo.full_data() * values))

    def _check_same_shape(self, other, op):
        if other.shape != self.shape:
            raise ValueError(f"{op}: shapes differ: {self.shape} and {other.shape}")

    def __add__(self, other):
        if isinstance(other, SparseMatrix):
            self._check_same_shape(other, 'add')
            a, b = self.tocoo(), other.tocoo()
            data = u.math.concatenate([a.full_data(), b.full_data()])
            coo = FORMATS['coo']((data, (jnp.concatenate([a.row, b.row]),
                                         jnp.concatenate([a.col, b.col]))), shape=self.shape)
            return type(self).fromcoo(coo)
        if isinstance(other, (jax.Array, np.ndarray, u.Quantity)) and other.ndim:
            try:
                np.broadcast_shapes(self.shape, other.shape)
            except ValueError:
                raise ValueError(f"add: a dense operand of shape {other.shape} does not "
                                 f"broadcast to the matrix shape {self.shape}") from None
            return self.todense() + other
        if _is_scalar(other) and is_concrete(other) and np.all(split_unit(other)[0] == 0):
            return self
        if _is_scalar(other):
            raise TypeError("adding a nonzero scalar to a sparse matrix would make it dense; "
                            "use m.todense() + value")
        return NotImplemented

    def __radd__(self, other):
        return self.__add__(other)

    def __sub__(self, other):
        if isinstance(other, SparseMatrix) or _is_scalar(other) or hasattr(other, 'ndim'):
            return self + (-other)
        return NotImplemented

    def __rsub__(self, other):
        return (-self).__add__(other)

    # -- reductions ------------------------------------------------------
    def sum(self, axis: int | None = None):
        """Sum of all entries (``axis=None``), of each column (0) or of each row (1)."""
        coo = self.tocoo()
        w, unit = split_unit(coo.full_data())
        if w.dtype == jnp.bool_:
            w = w.astype(jnp.int32)  # numpy sums bools as integers
        if axis is None:
            return with_unit(jnp.sum(w), unit)
        if axis not in (0, 1, -1, -2):
            raise ValueError(f"axis must be None, 0 or 1 for a matrix; received {axis!r}")
        axis = axis % 2
        ids, size = (coo.col, self.shape[1]) if axis == 0 else (coo.row, self.shape[0])
        return with_unit(jax.ops.segment_sum(w, ids, num_segments=size), unit)

    def diagonal(self, k: int = 0):
        """The ``k``-th diagonal (``k > 0`` above the main one), duplicates summed."""
        m, n = self.shape
        size = max(0, min(m + min(k, 0), n - max(k, 0)))
        coo = self.tocoo()
        w, unit = split_unit(coo.full_data())
        on_diag = (coo.col - coo.row) == k
        pos = jnp.where(on_diag, coo.row if k >= 0 else coo.col, size)
        values = w.astype(jnp.int32) if w.dtype == jnp.bool_ else w
        out = jax.ops.segment_sum(jnp.where(on_diag, values, 0), pos,
                                  num_segments=size + 1)[:size]
        return with_unit(out > 0 if w.dtype == jnp.bool_ else out, unit)

    # -- plasticity ------------------------------------------------------
    def update_on_pre(self, pre_spike, post_trace, w_min=None, w_max=None, *, backend=None):
        """Weights after presynaptic spikes: synapse ``(i, j)`` of a spiking ``i`` becomes
        ``clip(w + post_trace[j], w_min, w_max)``; other synapses are left as they are.

        Returns a matrix of the same format and structure with new ``data``.
        ``post_trace`` (shape ``(num_post,)``) and the bounds are in the weights'
        unit. The native kernel visits the synapses of the spiking neurons only.

        Examples
        --------
        >>> import jax.numpy as jnp, brainevent
        >>> w = brainevent.CSR(jnp.array([[1., 0.], [1., 1.]]))
        >>> w.update_on_pre(jnp.array([0, 1]), jnp.array([0.5, 0.25]), w_max=1.4).data
        Array([1.  , 1.4 , 1.25], dtype=float32)
        """
        from ._plasticity import update_sparse
        return update_sparse(self, True, pre_spike, post_trace, w_min, w_max,
                             backend or self.backend)

    def update_on_post(self, pre_trace, post_spike, w_min=None, w_max=None, *, backend=None):
        """Weights after postsynaptic spikes: synapse ``(i, j)`` of a spiking ``j`` becomes
        ``clip(w + pre_trace[i], w_min, w_max)``; other synapses are left as they are.

        As :meth:`update_on_pre`, with ``pre_trace`` of shape ``(num_pre,)``.

        Examples
        --------
        >>> import jax.numpy as jnp, brainevent
        >>> w = brainevent.COO(jnp.array([[1., 0.], [1., 1.]]))
        >>> w.update_on_post(jnp.array([-0.5, 0.5]), jnp.array([True, False])).todense()
        Array([[0.5, 0. ],
               [1.5, 1. ]], dtype=float32)
        """
        from ._plasticity import update_sparse
        return update_sparse(self, False, post_spike, pre_trace, w_min, w_max,
                             backend or self.backend)

    def _grouping(self, pre: bool):
        """The entries grouped by presynaptic (``pre``) or postsynaptic neuron, for updates."""
        raise TypeError(f"{type(self).__name__} stores no per-synapse weights to update")

    # -- products --------------------------------------------------------
    def _flat_data(self):
        """The weights as the product kernels read them: ``(nnz,)``, or ``(1,)`` if homogeneous."""
        return self.data

    def _product(self, operand, *, transpose: bool, backend=None):
        return product(self._flat_data(), operand, shape=self.shape, transpose=transpose,
                       call=self._matmul_call, backend=backend or self.backend,
                       indexed_call=self._indexed_call)

    def _matmul_call(self, w, b, info, backend):
        raise NotImplementedError

    _indexed_call = None  # a layout with an indexed-events kernel defines this method
