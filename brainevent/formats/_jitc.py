"""Just-in-time connectivity: random matrices regenerated from a seed, never stored.

One family parameterised by a weight distribution (:class:`WeightDist`):
``JITCScalar`` (one weight for every entry), ``JITCNormal`` (normal weights),
``JITCUniform`` (uniform weights), each in two orientations. ``...R`` draws
row ``i``'s entries from the stream ``(seed, i)``; ``...C`` of shape ``(m, n)``
is a view of the ``...R`` of shape ``(n, m)``, transposed, so column ``j`` is
drawn from the stream ``(seed, j)``. The structure (which entries exist) comes
from :mod:`._jitc_random`, in integer arithmetic, so every backend and every
operation sees the same matrix.

Weights are linear in the parameter vector ``data`` (``theta``): entry weights
are ``sum_k theta[k] * basis_k(entry)``, with bases ``(1,)`` (scalar),
``(1 - x, x)`` (uniform on ``[w_low, w_high]``, ``x`` uniform in (0, 1)) and
``(1, z)`` (normal ``w_mu + w_sigma z``). Products are therefore linear in
``theta`` and the gradient with respect to a parameter is the product with its
basis matrix.
"""

import numbers
from functools import partial
from typing import Callable, NamedTuple

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._misc import (as_numeric, check_seed, check_shape, is_concrete, split_unit, type_name,
                     with_unit)
from ..backends._numba_ffi import numba_available
from ._base import SparseMatrix, register_products
from ._jitc_random import (WEIGHT_SALT, draw, normal01, row_keys, skip, structure_params,
                           uniform01)
from ._matmul import MatmulInfo, event_values, matmul_kernel

__all__ = ['JITCMatrix', 'JITCScalarR', 'JITCScalarC', 'JITCNormalR', 'JITCNormalC',
           'JITCUniformR', 'JITCUniformC', 'WeightDist']

MAX_DIM = 1 << 30  # positions are int32 and a skip may overshoot a row by its length


class WeightDist(NamedTuple):
    """How a JITC family draws entry weights from its parameter vector ``theta``."""
    name: str
    params: tuple[str, ...]            # names of theta's entries, in order
    aliases: tuple[tuple[str, str], ...]  # other accepted keyword names: (alias, name)
    basis: Callable                    # (weight keys, draw index, dtype) -> one array per param
    nonnegative: tuple[int, ...] = ()  # params that must be >= 0


def _ones_basis(wkeys, t, dtype):
    return (jnp.ones(wkeys.shape, dtype),)


def _uniform_basis(wkeys, t, dtype):
    x = uniform01(draw(wkeys, t), dtype)
    return 1 - x, x


def _normal_basis(wkeys, t, dtype):
    z = normal01(draw(wkeys, 2 * t), draw(wkeys, 2 * t + 1), dtype)
    return jnp.ones_like(z), z


SCALAR = WeightDist('scalar', ('weight',), (), _ones_basis)
UNIFORM = WeightDist('uniform', ('w_low', 'w_high'), (('low', 'w_low'), ('high', 'w_high')),
                     _uniform_basis)
NORMAL = WeightDist('normal', ('w_mu', 'w_sigma'),
                    (('loc', 'w_mu'), ('scale', 'w_sigma'), ('mu', 'w_mu'), ('sigma', 'w_sigma')),
                    _normal_basis, nonnegative=(1,))


def _weights(dist, theta, keys, t):
    basis = dist.basis(keys ^ jnp.uint32(WEIGHT_SALT), t, theta.dtype)
    return sum((theta[k] * b for k, b in enumerate(basis[1:], 1)), theta[0] * basis[0])


# ---------------------------------------------------------------------------
# Pure-JAX generation: every row's entries, one draw per loop iteration
# ---------------------------------------------------------------------------

def _walk(params, shape, active, carry, visit):
    """Visit the entries of the rows where ``active``, draw by draw.

    ``visit(carry, keys, t, col, hit) -> carry`` sees, for every row at once,
    the row keys, the draw index ``t``, the column of the row's ``t``-th entry
    and whether that entry exists (``col`` is 0 where it does not). The loop
    runs as many times as the longest active row has entries, plus one.
    """
    m, n = shape
    keys = row_keys(params[0], jnp.arange(m, dtype=jnp.uint32))
    start = jnp.where(active, -1, n).astype(jnp.int32)

    def cond(state):
        return jnp.any(state[0] < n)

    def body(state):
        c, t, carry = state
        live = c < n
        g = skip(draw(keys, t), params[1], params[2], n).astype(jnp.int32)
        c = jnp.where(live, c + 1 + g, c)
        hit = live & (c < n)
        return c, t + 1, visit(carry, keys, t, jnp.where(hit, c, 0), hit)

    return lax.while_loop(cond, body, (start, jnp.uint32(0), carry))[2]


def _product_impl(dist, theta, params, b, *, info: MatmulInfo):
    m, n = info.shape
    bv = event_values(b, info.event, theta.dtype)
    if not info.transpose:  # A @ B: out[i] = sum_t w_it B[c_it]
        out = jnp.zeros((m,) + bv.shape[1:], theta.dtype)
        if m == 0 or n == 0:
            return [out]

        def visit(acc, keys, t, col, hit):
            w = jnp.where(hit, _weights(dist, theta, keys, t), 0)
            return acc + (w * bv[col] if bv.ndim == 1 else w[:, None] * bv[col])
        return [_walk(params, info.shape, jnp.ones(m, bool), out, visit)]
    out = jnp.zeros(bv.shape[:-1] + (n,), theta.dtype)  # B @ A: out[..., c_it] += B[..., i] w_it
    if m == 0 or n == 0:
        return [out]
    active = bv != 0 if bv.ndim == 1 else jnp.any(bv != 0, axis=0)

    def visit(acc, keys, t, col, hit):
        w = _weights(dist, theta, keys, t)
        idx = jnp.where(hit, col, n)
        if bv.ndim == 1:
            return acc.at[idx].add(w * bv, mode='drop')
        return acc.at[:, idx].add(w * bv, mode='drop')
    return [_walk(params, info.shape, active, out, visit)]


def _weight_ct(kernels, dist, ct, params, b, *, info, w_shape):
    """d<ct, A(theta) B>/d theta_k = <ct, A(e_k) B>: the product with each basis matrix."""
    kernel = kernels[dist.name]
    grads = [jnp.sum(ct * kernel.bind(basis, params, b, info=info)[0])
             for basis in jnp.eye(w_shape[0], dtype=ct.dtype)]
    return jnp.stack(grads)


_KERNELS: dict = {}
for _dist in (SCALAR, NORMAL, UNIFORM):
    _KERNELS[_dist.name] = matmul_kernel(
        f'jitc_{_dist.name}_matmul',
        lambda *args, info, _d=_dist: _product_impl(_d, *args, info=info),
        lambda ct, *args, info, w_shape, _d=_dist: _weight_ct(_KERNELS, _d, ct, *args, info=info,
                                                              w_shape=w_shape))


@partial(jax.jit, static_argnums=1)
def _row_counts(params, shape):
    m, n = shape
    counts = jnp.zeros(m, jnp.int32)
    if m == 0 or n == 0:
        return counts
    return _walk(params, shape, jnp.ones(m, bool), counts,
                 lambda acc, keys, t, col, hit: acc + hit.astype(jnp.int32))


@partial(jax.jit, static_argnums=(0, 3))
def _dense(dist, theta, params, shape):
    m, n = shape
    out = jnp.zeros(shape, theta.dtype)
    if m == 0 or n == 0:
        return out
    rows = jnp.arange(m)

    def visit(acc, keys, t, col, hit):
        return acc.at[jnp.where(hit, rows, m), col].add(_weights(dist, theta, keys, t),
                                                         mode='drop')
    return _walk(params, shape, jnp.ones(m, bool), out, visit)


@partial(jax.jit, static_argnums=(0, 3, 4))
def _entries(dist, theta, params, shape, capacity: int):
    """``(row, col, data, counts)`` of every entry in row-major order, padded to ``capacity``.

    Padding entries are explicit zeros at (0, 0); if the matrix has more than
    ``capacity`` entries, ``data`` is all NaN (the overflow cannot go unnoticed).
    """
    m, n = shape
    counts = _row_counts(params, shape)
    row = jnp.zeros(capacity, jnp.int32)
    col = jnp.zeros(capacity, jnp.int32)
    data = jnp.zeros(capacity, theta.dtype)
    if m == 0 or n == 0 or capacity == 0:
        return row, col, data, counts
    start = jnp.cumsum(counts) - counts
    rows = jnp.arange(m, dtype=jnp.int32)

    def visit(acc, keys, t, c, hit):
        r_arr, c_arr, d_arr = acc
        pos = jnp.where(hit, start + t.astype(jnp.int32), capacity)
        return (r_arr.at[pos].set(rows, mode='drop'), c_arr.at[pos].set(c, mode='drop'),
                d_arr.at[pos].set(_weights(dist, theta, keys, t), mode='drop'))
    row, col, data = _walk(params, shape, jnp.ones(m, bool), (row, col, data), visit)
    data = jnp.where(jnp.sum(counts) > capacity, jnp.nan, data)
    return row, col, data, counts


# ---------------------------------------------------------------------------
# Constructor arguments
# ---------------------------------------------------------------------------

def _scalar(x, name):
    arr = as_numeric(x, name)
    if arr.ndim != 0:
        raise ValueError(f"{name} must be a scalar; received shape {arr.shape}")
    return arr


def _check_prob(prob):
    if isinstance(prob, u.Quantity):
        raise TypeError(f"prob must be a unitless number in [0, 1]; received a Quantity in "
                        f"{prob.unit}")
    if not isinstance(prob, jax.core.Tracer):
        given, prob = prob, np.asarray(prob)  # checked at the precision given, before float32
        if prob.dtype == np.bool_ or prob.dtype.kind not in 'iuf':
            raise TypeError(f"prob must be a real number in [0, 1]; received {given!r} "
                            f"({type_name(given)}, dtype {prob.dtype})")
        if prob.ndim != 0:
            raise ValueError(f"prob must be a scalar; received shape {prob.shape}")
        if not 0.0 <= float(prob) <= 1.0:
            raise ValueError(f"prob must be in [0, 1]; received {float(prob)}")
    arr = _scalar(prob, 'prob')
    if not jnp.issubdtype(arr.dtype, jnp.floating) and not jnp.issubdtype(arr.dtype, jnp.integer):
        raise TypeError(f"prob must be a real number in [0, 1]; received dtype {arr.dtype}")
    return arr.astype(jnp.float32)


def _float_dtype(dtypes, dtype):
    if dtype is not None:
        dtype = np.dtype(dtype)
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(f"dtype must be a floating dtype; received {dtype}")
        return dtype
    found = jnp.result_type(*dtypes) if dtypes else jnp.float32
    return found if jnp.issubdtype(found, jnp.floating) else jnp.zeros((), float).dtype


def _check_theta(dist: WeightDist, values, dtype=None, constructor=True):
    """The parameter vector ``theta`` (with the first parameter's unit) from ``values``.

    The constructor rejects a negative spread; :meth:`JITCMatrix.with_data` does
    not, because weights are linear in ``theta`` (``-m`` negates ``w_sigma``).
    """
    unit, mantissas = None, []
    for name, value in zip(dist.params, values):
        mantissa, value_unit = split_unit(value)
        if unit is None:
            unit = value_unit
        elif value_unit != unit:
            if value_unit.dim != unit.dim:
                raise ValueError(f"{name} is in {value_unit}, which does not convert to "
                                 f"{unit} (the unit of {dist.params[0]})")
            mantissa = u.Quantity(value).to_decimal(unit)
        mantissas.append(_scalar(mantissa, name))
    theta_dtype = _float_dtype([m.dtype for m in mantissas], dtype)
    theta = jnp.stack([m.astype(theta_dtype) for m in mantissas])
    if constructor and is_concrete(theta):
        for k, name in enumerate(dist.params):
            if not np.isfinite(float(theta[k])):
                raise ValueError(f"{name} must be finite; received {float(theta[k])}")
        for k in dist.nonnegative:
            if float(theta[k]) < 0:
                raise ValueError(f"{dist.params[k]} must be >= 0; received {float(theta[k])}")
    return with_unit(theta, unit)


def _parse(cls, args, kwargs, shape):
    """``(shape, {param: value}, prob, seed)`` from either constructor form."""
    dist = cls.dist
    names = ('num_pre', 'num_post', 'prob', *dist.params, 'seed')
    if args and isinstance(args[0], (tuple, list)):
        fields = (*dist.params, 'prob', 'seed')
        if len(args) > 1 or kwargs:
            raise TypeError(f"{cls.__name__}(({', '.join(fields)}), shape=(m, n)) takes no other "
                            f"arguments; received {len(args) - 1} more positional and "
                            f"{sorted(kwargs)} keyword arguments")
        if len(args[0]) not in (len(fields), len(fields) - 1):
            raise ValueError(f"{cls.__name__} takes the tuple ({', '.join(fields)}) (seed "
                             f"optional); received a tuple of {len(args[0])} items")
        if shape is None:
            raise ValueError(f"{cls.__name__}(({', '.join(fields)}), shape=(m, n)) needs shape=")
        values = dict(zip(fields, args[0]))
        dims = check_shape(shape)
    else:
        if len(args) > len(names):
            raise TypeError(f"{cls.__name__} takes at most {len(names)} positional arguments "
                            f"({', '.join(names)}); received {len(args)}")
        values = dict(zip(names, args))
        for key, value in kwargs.items():
            name = dict(dist.aliases).get(key, key)
            if name not in names:
                accepted = ', '.join(names + tuple(a for a, _ in dist.aliases))
                raise TypeError(f"{cls.__name__} got an unexpected argument {key!r}; it takes "
                                f"{accepted}")
            if name in values:
                raise TypeError(f"{cls.__name__} got {name!r} twice")
            values[name] = value
        given = (values.pop('num_pre', None), values.pop('num_post', None))
        if shape is not None:
            dims = check_shape(shape)
            for name, d, expected in zip(('num_pre', 'num_post'), given, dims):
                if d is not None and d != expected:
                    raise ValueError(f"{name}={d} disagrees with shape={dims}")
        elif None in given:
            raise TypeError(f"{cls.__name__} needs num_pre and num_post (or shape=(m, n)); "
                            f"received num_pre={given[0]}, num_post={given[1]}")
        else:
            dims = check_shape(given, '(num_pre, num_post)')
    missing = [name for name in ('prob',) + dist.params if name not in values]
    if missing:
        raise TypeError(f"{cls.__name__} is missing {', '.join(missing)}")
    if max(dims) > MAX_DIM:
        raise ValueError(f"JITC matrices support dimensions up to 2**30; received shape {dims}")
    return dims, [values[k] for k in dist.params], values['prob'], values.get('seed')


# ---------------------------------------------------------------------------
# The family
# ---------------------------------------------------------------------------

_FAMILY: dict[tuple[str, str], type] = {}


class JITCMatrix(SparseMatrix):
    """Base class of the just-in-time connectivity matrices (see :class:`JITCScalarR`).

    Examples
    --------
    >>> import brainevent
    >>> m = brainevent.JITCUniformR(3, 4, prob=0.5, w_low=0.0, w_high=1.0, seed=0)
    >>> isinstance(m, brainevent.JITCMatrix), m.T.shape, m.nnz == m.tocsr().nnz
    (True, (4, 3), True)
    """

    format = 'jitc'
    _hub = False
    _fields = ('data', 'prob', 'seed')
    dist: WeightDist
    orientation: str  # 'R': rows drawn from (seed, row); 'C': columns from (seed, column)

    def __init__(self, *args, shape=None, dtype=None, backend=None, **kwargs):
        dims, params, prob, seed = _parse(type(self), args, kwargs, shape)
        self._set(_check_theta(self.dist, params, dtype), _check_prob(prob), check_seed(seed),
                  shape=dims)
        if backend is not None:
            self.backend = self.with_backend(backend).backend

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if 'dist' in cls.__dict__:
            _FAMILY[cls.dist.name, cls.orientation] = cls

    def __getattr__(self, name):  # the parameters by name: weight, w_mu, w_sigma, ...
        dist = getattr(type(self), 'dist', None)
        if dist is not None and not name.startswith('_'):
            name = dict(dist.aliases).get(name, name)
            if name in dist.params and 'data' in self.__dict__:
                theta, unit = split_unit(self.data)
                return with_unit(theta[dist.params.index(name)], unit)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __repr__(self):
        name = type(self).__name__
        if not is_concrete(self.data, self.prob, self.seed):
            return f"{name}(shape={self.shape}, traced)"
        theta, unit = split_unit(self.data)
        params = ', '.join(f"{k}={float(v):.6g}" for k, v in zip(self.dist.params,
                                                                  np.asarray(theta)))
        unit = '' if unit.is_unitless else f", unit={unit}"
        return (f"{name}(shape={self.shape}, prob={float(self.prob):.6g}, {params}, "
                f"seed={int(self.seed)}{unit})")

    # -- the parameters --------------------------------------------------
    def with_data(self, data):
        """Same structure (prob, seed), new weight parameters.

        ``data`` is the parameter vector ``(weight,)``, ``(w_mu, w_sigma)`` or
        ``(w_low, w_high)`` (a scalar for ``JITCScalar``); units allowed.
        """
        k = len(self.dist.params)
        if isinstance(data, (tuple, list)):
            values = list(data)
        else:
            mantissa, unit = split_unit(data)
            arr = as_numeric(mantissa, 'data')
            if arr.ndim == 0 and k == 1:
                arr = arr.reshape(1)
            if arr.shape != (k,):
                raise ValueError(f"data must have shape ({k},): the parameters "
                                 f"{', '.join(self.dist.params)}; received shape {arr.shape}")
            values = [with_unit(arr[i], unit) for i in range(k)]
        if len(values) != k:
            raise ValueError(f"data must give {k} parameters ({', '.join(self.dist.params)}); "
                             f"received {len(values)}")
        return self._make(_check_theta(self.dist, values, constructor=False), self.prob,
                          self.seed, shape=self.shape, backend=self.backend)

    @property
    def is_homogeneous(self) -> bool:
        return self.dist.name == 'scalar'

    @property
    def nnz(self) -> int:
        """The number of entries (generates the whole matrix once; not inside ``jit``)."""
        if not is_concrete(self.prob, self.seed):
            raise ValueError(f"{type(self).__name__}.nnz depends on prob and seed, which are "
                             f"traced here; use m.entry_counts().sum() inside jit")
        return int(jnp.sum(self.entry_counts()))

    # -- orientation -----------------------------------------------------
    def _rows(self):
        """The row-oriented matrix whose entries are this one's (transposed for ``...C``)."""
        if self.orientation == 'R':
            return self
        return _FAMILY[self.dist.name, 'R']._make(*self._arrays(), shape=self.shape[::-1],
                                                 backend=self.backend)

    def transpose(self, axes=None):
        """The transposed matrix, with the same entries: an ``...R`` becomes a ``...C``."""
        if axes is not None and tuple(axes) != (1, 0):
            raise ValueError(f"a matrix transposes with axes=(1, 0) only; received {axes!r}")
        other = 'C' if self.orientation == 'R' else 'R'
        return _FAMILY[self.dist.name, other]._make(*self._arrays(), shape=self.shape[::-1],
                                                   backend=self.backend)

    def _params(self):
        return structure_params(self.prob, self.seed)

    def entry_counts(self):
        """Entries per row (``...R``) or per column (``...C``), as a JAX array (jit-safe)."""
        rows = self._rows()
        return _row_counts(self._params(), rows.shape)

    # -- conversions -----------------------------------------------------
    def todense(self):
        """The dense matrix (jit-safe; a Quantity when the weights have units)."""
        theta, unit = split_unit(self.data)
        rows = self._rows()
        dense = _dense(self.dist, theta, self._params(), rows.shape)
        return with_unit(dense if self.orientation == 'R' else dense.T, unit)

    def _capacity(self, nnz):
        if nnz is None:
            if not is_concrete(self.prob, self.seed):
                raise ValueError(f"{type(self).__name__}: the number of entries depends on prob "
                                 f"and seed, which are traced here; inside jit give nnz=, an "
                                 f"upper bound (e.g. m.nnz computed outside jit)")
            return self.nnz
        if isinstance(nnz, (bool, np.bool_)) or not isinstance(nnz, (numbers.Integral,
                                                                       np.integer)):
            raise TypeError(f"nnz must be a non-negative integer; received {nnz!r}")
        if nnz < 0:
            raise ValueError(f"nnz must be a non-negative integer; received {nnz}")
        if is_concrete(self.prob, self.seed) and int(nnz) < self.nnz:
            raise ValueError(f"nnz={nnz} is smaller than the matrix's {self.nnz} entries")
        return 0 if 0 in self.shape else int(nnz)

    def tocoo(self, nnz: int | None = None):
        """Entries as :class:`COO` (row-major for ``...R``).

        Inside ``jit`` give ``nnz``, an upper bound of the number of entries: the
        result then has ``nnz`` stored entries, the extra ones explicit zeros at
        (0, 0); if the matrix has more than ``nnz`` entries, every weight is NaN.
        """
        from ._coo import COO
        if self.orientation == 'C':
            return self._rows().tocoo(nnz).transpose()
        theta, unit = split_unit(self.data)
        row, col, data, _ = _entries(self.dist, theta, self._params(), self.shape,
                                     self._capacity(nnz))
        return COO._make(with_unit(data, unit), row, col, shape=self.shape, backend=self.backend)

    def tocsr(self, nnz: int | None = None):
        """Entries as :class:`CSR` (``nnz``: as in :meth:`tocoo`; padding entries at (0, 0)
        for ``...C``, at the end of the last row for ``...R``)."""
        from ._csr import CSR
        if self.orientation == 'C':
            return self._keep_backend(CSR.fromcoo(self.tocoo(nnz)))
        theta, unit = split_unit(self.data)
        capacity = self._capacity(nnz)
        _, col, data, counts = _entries(self.dist, theta, self._params(), self.shape, capacity)
        indptr = jnp.concatenate([jnp.zeros(1, jnp.int32), jnp.cumsum(counts, dtype=jnp.int32)])
        indptr = indptr.at[-1].set(capacity) if self.shape[0] else indptr
        return CSR._make(with_unit(data, unit), col, indptr, shape=self.shape,
                         backend=self.backend)

    def tocsc(self, nnz: int | None = None):
        """Entries as :class:`CSC` (``nnz``: as in :meth:`tocoo`)."""
        from ._csr import CSC
        if self.orientation == 'C':
            return self._rows().tocsr(nnz).transpose()
        return self._keep_backend(CSC.fromcoo(self.tocoo(nnz)))

    @classmethod
    def fromcoo(cls, coo):
        """Entry-wise results (``abs``, ``multiply``, ``+``) of a JITC matrix are CSR."""
        from ._csr import CSR
        return CSR.fromcoo(coo)

    def to_scipy(self):
        """The entries as a ``scipy.sparse.csr_array`` (unitless weights only)."""
        return self.tocsr().to_scipy()

    def sum(self, axis: int | None = None):
        """Sum of all entries, of each column (0) or of each row (1); jit-safe."""
        if axis is None:
            return u.math.sum(self.sum(0))
        if axis not in (0, 1, -1, -2):
            raise ValueError(f"axis must be None, 0 or 1 for a matrix; received {axis!r}")
        dtype = split_unit(self.data)[0].dtype
        if axis % 2 == 0:
            return jnp.ones(self.shape[0], dtype) @ self
        return self @ jnp.ones(self.shape[1], dtype)

    # -- products --------------------------------------------------------
    def _matmul_call(self, w, b, info, backend):
        if self.orientation == 'C':
            flipped = info._replace(shape=info.shape[::-1], transpose=not info.transpose)
            rows = self._rows()
            if b.ndim == 1:
                return rows._matmul_call(w, b, flipped, backend)
            return rows._matmul_call(w, b.T, flipped, backend).T
        kernel = _KERNELS[self.dist.name]
        return kernel.bind(w, self._params(), b, info=info, backend=backend)[0]


_COSTS = """
    Costs: generating a row's entries takes one hash per entry (plus one), never
    O(num_post). For ``{r}`` the natural products are ``spikes @ W`` (work
    proportional to the spikes times their row lengths) and ``W @ x`` (one pass
    over all entries); ``W @ spikes`` also makes one pass over all entries,
    whatever the spikes. ``{c}`` is the transpose: ``W @ spikes`` is the
    event-driven one. Memory: the output and O(1) state per row, whatever the
    number of entries. There are no per-entry weights to learn (use CSR for
    that, e.g. ``m.tocsr()``).
"""


def _doc(cls):
    """Put the cost notes before the examples of a family class's docstring; register it."""
    head, examples = cls.__doc__.split('    Examples\n', 1)
    costs = _COSTS.format(r=cls.__name__[:-1] + 'R', c=cls.__name__[:-1] + 'C')
    cls.__doc__ = head.rstrip() + '\n' + costs + '\n    Examples\n' + examples
    return jax.tree_util.register_pytree_node_class(cls)


@_doc
class JITCScalarR(JITCMatrix):
    """Random connectivity with one weight for every entry, rows drawn from the seed.

    Each entry ``(i, j)`` of the ``(num_pre, num_post)`` matrix is present with
    probability ``prob``, independently, and weighs ``weight``. The matrix is
    never stored: every operation regenerates row ``i`` from ``(seed, i)``, so
    it is the same matrix in every product, on every backend and in every
    process (see docs/jitc.md for the method).

    Constructor forms::

        JITCScalarR(num_pre, num_post, prob, weight, seed)   # keywords too
        JITCScalarR((weight, prob, seed), shape=(num_pre, num_post))

    ``weight`` may be a brainunit Quantity; ``prob``, ``seed`` and ``weight``
    are pytree leaves (vmap over seeds, build inside ``jit``). ``seed=None``
    draws a fresh seed from the operating system.

    Examples
    --------
    >>> import jax.numpy as jnp, brainevent
    >>> w = brainevent.JITCScalarR(num_pre=4, num_post=6, prob=0.5, weight=0.25, seed=1)
    >>> w.todense()
    Array([[0.  , 0.  , 0.25, 0.  , 0.  , 0.  ],
           [0.25, 0.25, 0.  , 0.25, 0.25, 0.  ],
           [0.  , 0.25, 0.  , 0.  , 0.  , 0.  ],
           [0.  , 0.  , 0.  , 0.25, 0.25, 0.25]], dtype=float32)
    >>> spikes = brainevent.BinaryArray(jnp.array([True, False, True, False]))
    >>> spikes @ w
    Array([0.  , 0.25, 0.25, 0.  , 0.  , 0.  ], dtype=float32)
    """
    dist = SCALAR
    orientation = 'R'


@_doc
class JITCScalarC(JITCMatrix):
    """:class:`JITCScalarR` drawn by columns: column ``j`` comes from ``(seed, j)``.

    ``JITCScalarC(num_pre, num_post, prob, weight, seed)`` equals
    ``JITCScalarR(num_post, num_pre, prob, weight, seed).T``.

    Examples
    --------
    >>> import jax.numpy as jnp, brainevent
    >>> c = brainevent.JITCScalarC(6, 4, 0.5, 0.25, seed=1)
    >>> r = brainevent.JITCScalarR(4, 6, 0.5, 0.25, seed=1)
    >>> bool(jnp.all(c.todense() == r.todense().T)), type(r.T).__name__
    (True, 'JITCScalarC')
    """
    dist = SCALAR
    orientation = 'C'


@_doc
class JITCNormalR(JITCMatrix):
    """Random connectivity with normal weights ``w_mu + w_sigma * z``, rows drawn from the seed.

    The structure is that of :class:`JITCScalarR` with the same ``prob`` and
    ``seed``; each entry's weight is drawn from its own stream. Constructor
    forms::

        JITCNormalR(num_pre, num_post, prob, w_mu, w_sigma, seed)  # or loc=, scale=
        JITCNormalR((w_mu, w_sigma, prob, seed), shape=(num_pre, num_post))

    Examples
    --------
    >>> import brainevent
    >>> w = brainevent.JITCNormalR(1000, 1000, prob=0.1, w_mu=1.0, w_sigma=0.1, seed=3)
    >>> d = w.todense()
    >>> round(float(d[d != 0].mean()), 2), round(float(d[d != 0].std()), 2)
    (1.0, 0.1)
    >>> w.w_mu, w.w_sigma
    (Array(1., dtype=float32), Array(0.1, dtype=float32))
    """
    dist = NORMAL
    orientation = 'R'


@_doc
class JITCNormalC(JITCMatrix):
    """:class:`JITCNormalR` drawn by columns (the transpose of a ``JITCNormalR``).

    Examples
    --------
    >>> import jax.numpy as jnp, brainevent
    >>> c = brainevent.JITCNormalC(5, 3, 0.5, w_mu=0.0, w_sigma=1.0, seed=2)
    >>> bool(jnp.allclose(c.T.todense(), c.todense().T))
    True
    """
    dist = NORMAL
    orientation = 'C'


@_doc
class JITCUniformR(JITCMatrix):
    """Random connectivity with weights uniform on ``[w_low, w_high]``, rows drawn from the seed.

    Constructor forms::

        JITCUniformR(num_pre, num_post, prob, w_low, w_high, seed)  # or low=, high=
        JITCUniformR((w_low, w_high, prob, seed), shape=(num_pre, num_post))

    Examples
    --------
    >>> import brainevent
    >>> w = brainevent.JITCUniformR(100, 100, prob=0.2, w_low=0.5, w_high=1.5, seed=0)
    >>> d = w.todense()
    >>> bool(((d == 0) | ((d >= 0.5) & (d <= 1.5))).all())
    True
    """
    dist = UNIFORM
    orientation = 'R'


@_doc
class JITCUniformC(JITCMatrix):
    """:class:`JITCUniformR` drawn by columns (the transpose of a ``JITCUniformR``).

    Examples
    --------
    >>> import jax.numpy as jnp, brainevent
    >>> c = brainevent.JITCUniformC(4, 7, 0.3, w_low=-1.0, w_high=1.0, seed=5)
    >>> x = jnp.ones(7)
    >>> bool(jnp.allclose(c @ x, c.todense() @ x))
    True
    """
    dist = UNIFORM
    orientation = 'C'


for _cls in _FAMILY.values():
    register_products(_cls, _KERNELS[_cls.dist.name])

if numba_available:
    from ._jitc_numba import jitc_normal_body, jitc_scalar_body, jitc_uniform_body
    from ._numba import register_numba
    register_numba(_KERNELS['scalar'], jitc_scalar_body)
    register_numba(_KERNELS['normal'], jitc_normal_body)
    register_numba(_KERNELS['uniform'], jitc_uniform_body)
