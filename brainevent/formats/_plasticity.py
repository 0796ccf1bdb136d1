"""Event-driven synaptic plasticity: weight updates driven by pre- or postsynaptic spikes.

The rule every function here applies (the building block of STDP-like learning):

* on presynaptic spikes, every stored synapse ``(i, j)`` with ``pre_spike[i] != 0``
  becomes ``clip(w + post_trace[j], w_min, w_max)``;
* on postsynaptic spikes, every stored synapse ``(i, j)`` with
  ``post_spike[j] != 0`` becomes ``clip(w + pre_trace[i], w_min, w_max)``.

Other synapses keep their value (they are not clipped). A duplicate stored
entry is a synapse of its own and is updated on its own. Spikes are any nonzero
value (bool, 0/1 numbers or a ``BinaryArray``).

Every layout describes its entries grouped by the spiking side (a
:class:`Grouping`): the entries of group ``g`` sit at grouped positions
``ptr[g]:ptr[g + 1]`` (for rows of equal length ``c``: ``ptr = [c, groups]`` and
positions ``g * c:(g + 1) * c``), position ``p`` is entry ``perm[p]`` (no
``perm`` where the layout is already grouped, e.g. CSR rows on presynaptic
spikes) and reads the trace at ``other[p]``. One kernel then serves every
layout: its native implementation visits the groups of spiking neurons only and
writes the updated entries in place (the output aliases the data), so the work
is proportional to the spikes times their row or column lengths. A grouping
that needs a sort (CSR on postsynaptic spikes, CSC on presynaptic ones, COO,
the fixed-degree formats on their free side) is computed once per structure and
cached, keyed on the index arrays, when they are concrete: build the structure
outside ``jit``/``scan`` and carry only ``data`` (``m.with_data(data)`` inside
the loop). With a traced structure (a matrix passed into ``jit`` or carried
whole through ``scan``) such an update looks at every entry instead: O(nnz) per
call, no sort.
"""

import weakref
from functools import partial
from typing import NamedTuple

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np
from jax.interpreters import ad

from .._misc import as_numeric, is_concrete, split_unit, type_name, with_unit
from ..backends import XLACustomKernel
from ..backends._numba_ffi import body_jit, ffi_call, name_of, numba_available, supports
from ..events._binary import BinaryArray
from ..events._indexed import IndexedBinary1d
from ._matmul import PLATFORMS

__all__ = ['update_on_binary_pre', 'update_on_binary_post', 'update_dense_on_binary_pre',
           'update_dense_on_binary_post', 'format_update', 'update_sparse', 'grouping',
           'major_grouping', 'minor_grouping', 'regular_grouping', 'entry_update',
           'dense_update']


class UpdateInfo(NamedTuple):
    layout: str  # how ``ptr`` and ``perm`` describe the groups (see Grouping)


# ---------------------------------------------------------------------------
# Groupings of a layout's entries
# ---------------------------------------------------------------------------

class Grouping(NamedTuple):
    """The entries of a matrix grouped by the spiking side, for one kind of update.

    ``layout`` says how to read ``ptr`` and ``perm`` (``other`` is indexed like the
    positions): ``'major'``, group ``g`` is entries ``ptr[g]:ptr[g + 1]``;
    ``'regular'``, ``ptr = [c, groups]`` and group ``g`` is entries ``g*c:(g+1)*c``;
    ``'permuted'``, group ``g`` is positions ``ptr[g]:ptr[g + 1]``, position ``p``
    being entry ``perm[p]``; ``'flat'``, no grouping: ``ptr`` holds each entry's
    group and every entry is looked at (the fallback for a traced structure);
    ``'minor'``, compressed rows walked in full: ``ptr`` are their pointers, the row
    is the trace's index and ``other`` the spiking side's (CSR on postsynaptic
    spikes with a traced structure).
    """
    ptr: jax.Array
    perm: jax.Array | None
    other: jax.Array
    layout: str


_CACHE: dict[tuple, tuple] = {}


def _cached(tag: str, arrays: tuple, compute):
    """``compute()``, cached per identity of the concrete ``arrays`` (computed eagerly)."""
    key = (tag,) + tuple(id(a) for a in arrays)
    hit = _CACHE.get(key)
    if hit is not None and all(ref() is a for ref, a in zip(hit[0], arrays)):
        return hit[1]
    with jax.ensure_compile_time_eval():
        value = compute()
    refs = tuple(weakref.ref(a, lambda _, key=key, cache=_CACHE: cache.pop(key, None))
                 for a in arrays)
    _CACHE[key] = (refs, value)
    return value


def major_grouping(ptr, other) -> Grouping:
    """Entries already grouped: group ``g`` is ``ptr[g]:ptr[g + 1]`` (CSR rows)."""
    return Grouping(ptr, None, other, 'major')


def regular_grouping(indices) -> Grouping:
    """Rows of equal length: ``indices`` of shape ``(groups, c)``, entries row by row."""
    g, c = indices.shape
    return Grouping(jnp.array([c, g], indices.dtype), None, indices.reshape(-1), 'regular')


def minor_grouping(ptr, keys) -> Grouping:
    """Compressed rows whose entries group by ``keys`` (their columns), walked in full."""
    return Grouping(ptr, None, keys, 'minor')


def grouping(tag: str, arrays: tuple, keys_and_other, groups: int) -> Grouping:
    """Entries grouped by a key: ``keys_and_other(*arrays)`` gives each entry's group and
    trace index, in entry order. Sorted once per concrete structure (cached); a traced
    structure gets the flat layout instead (every entry looked at, no sort)."""
    if not is_concrete(*arrays):
        keys, other = keys_and_other(*arrays)
        return Grouping(keys, None, other, 'flat')

    def compute():
        keys, other = keys_and_other(*arrays)
        perm = np.argsort(np.asarray(keys), kind='stable')
        ptr = np.concatenate([[0], np.cumsum(np.bincount(np.asarray(keys), minlength=groups))])
        dtype = keys.dtype
        if np.array_equal(perm, np.arange(perm.size)):  # already grouped (e.g. sorted COO)
            return jnp.asarray(ptr, dtype), None, other
        return jnp.asarray(ptr, dtype), jnp.asarray(perm, dtype), other[jnp.asarray(perm)]
    ptr, perm, other = _cached(f'{tag}/{groups}', arrays, compute)
    return Grouping(ptr, perm, other, 'major' if perm is None else 'permuted')


# ---------------------------------------------------------------------------
# The kernels: grouped entries, and dense rows or columns
# ---------------------------------------------------------------------------

def _same_as_data(data, *rest, **params):
    return [jax.core.ShapedArray(data.shape, data.dtype)]


def _clip(x, bounds):
    return jnp.clip(x, bounds[0], bounds[1])


def _entry_update_jax(data, ptr, perm, other, spikes, trace, bounds, *, info):
    """Reference: every entry is looked at (O(nnz)). ``data`` may have any shape; its
    entries are counted in row-major order."""
    shape, data = data.shape, data.reshape(-1)
    nnz, groups = data.shape[0], spikes.shape[0]
    if nnz == 0:
        return [data.reshape(shape)]
    positions = jnp.arange(nnz, dtype=ptr.dtype)
    if info.layout == 'flat':
        group, reads = ptr, other
    elif info.layout == 'regular':
        group, reads = positions // (nnz // groups), other
    else:  # a search, not a repeat: XLA folds a repeat of constant pointers very slowly
        pointed = jnp.searchsorted(ptr, positions, side='right') - 1
        group, reads = (other, pointed) if info.layout == 'minor' else (pointed, other)
    permuted = info.layout == 'permuted'
    current = data[perm] if permuted else data
    updated = jnp.where(spikes[group] != 0, _clip(current + trace[reads], bounds), current)
    return [(data.at[perm].set(updated) if permuted else updated).reshape(shape)]


entry_update = XLACustomKernel('entry_update', _same_as_data)
entry_update.def_kernel('jax', PLATFORMS, _entry_update_jax)


def _dense_update_jax(weight, spikes, trace, bounds, *, axis):
    if axis == 0:  # rows of spiking presynaptic neurons gain the postsynaptic trace
        new = _clip(weight + trace[None, :], bounds)
        return [jnp.where((spikes != 0)[:, None], new, weight)]
    new = _clip(weight + trace[:, None], bounds)
    return [jnp.where((spikes != 0)[None, :], new, weight)]


dense_update = XLACustomKernel('dense_update', _same_as_data)
dense_update.def_kernel('jax', PLATFORMS, _dense_update_jax)


def _reference_jvp(kernel, impl, positions):
    """JVP of ``kernel`` through its pure-JAX reference ``impl``, linear in the arguments at
    ``positions`` (weights, trace, bounds); the primal output runs the chosen backend."""
    def rule(primals, tangents, *, backend, **params):
        out = kernel.primitive.bind(*primals, backend=backend, **params)

        def along(*values):
            args = list(primals)
            for i, value in zip(positions, values):
                args[i] = value
            return impl(*args, **params)[0]

        _, tangent = jax.jvp(along, [primals[i] for i in positions],
                             [ad.instantiate_zeros(tangents[i]) for i in positions])
        return out, [tangent]
    kernel.def_jvp_rule(rule)


_reference_jvp(entry_update, _entry_update_jax, (0, 5, 6))
_reference_jvp(dense_update, _dense_update_jax, (0, 2, 3))


def entry_update_body(layout):
    """numba: visit the groups of spiking neurons, or every entry for the flat and minor
    layouts; ``out`` holds the data (aliased), entries counted in row-major order."""
    jit = body_jit(name_of('entry_update', layout))
    regular, permuted = layout == 'regular', layout == 'permuted'
    flat, minor = layout == 'flat', layout == 'minor'

    @jit
    def body(data, ptr, perm, other, spikes, trace, bounds, out):
        out = out.reshape(out.size)  # the entries in row-major order (a view)
        lo, hi = bounds[0], bounds[1]
        nnz, size, groups = out.shape[0], trace.shape[0], spikes.shape[0]
        for g in range(nnz if flat else ptr.shape[0] - 1 if minor else groups):
            if flat:
                start, stop = g, g + 1
            elif minor:
                start, stop = ptr[g], ptr[g + 1]
            elif spikes[g] == 0:
                continue
            else:
                start = g * ptr[0] if regular else ptr[g]
                stop = start + ptr[0] if regular else ptr[g + 1]
            for p in range(start, stop):
                k = perm[p] if permuted else p
                spiking = ptr[p] if flat else other[p] if minor else g
                j = g if minor else other[p]  # the trace's index
                if (k < 0 or k >= nnz or j < 0 or j >= size or spiking < 0
                        or spiking >= groups):
                    return 1
                if (flat or minor) and spikes[spiking] == 0:
                    continue
                v = out[k] + trace[j]
                if v < lo:  # as jnp.clip: the upper bound wins when lo > hi
                    v = lo
                if v > hi:
                    v = hi
                out[k] = v
        return 0
    return body


def dense_update_body(axis):
    """numba: update the rows (axis 0) or columns (axis 1) of spiking neurons in place."""
    jit = body_jit(name_of('dense_update', axis))

    @jit
    def body(weight, spikes, trace, bounds, out):
        lo, hi = bounds[0], bounds[1]
        m, n = out.shape
        for s in range(spikes.shape[0]):
            if spikes[s] != 0:
                for t in range(n if axis == 0 else m):
                    i, j = (s, t) if axis == 0 else (t, s)
                    v = out[i, j] + trace[t]
                    if v < lo:  # as jnp.clip: the upper bound wins when lo > hi
                        v = lo
                    if v > hi:
                        v = hi
                    out[i, j] = v
        return 0
    return body


def _numba_update(factory, flags_of, fallback, *args, **params):
    if not supports(*(a.dtype for a in args)):
        return fallback(*args, **params)
    out = jax.ShapeDtypeStruct(args[0].shape, args[0].dtype)
    return ffi_call(factory, flags_of(**params), list(args), [out], aliases={0: 0})


if numba_available:
    entry_update.def_kernel('numba', 'cpu', partial(
        _numba_update, entry_update_body, lambda info: (info.layout,),
        _entry_update_jax))
    dense_update.def_kernel('numba', 'cpu', partial(
        _numba_update, dense_update_body, lambda axis: (axis,), _dense_update_jax))


# ---------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------

def _spikes(x, size: int, name: str):
    if isinstance(x, BinaryArray):
        x = x.value
    elif isinstance(x, IndexedBinary1d):
        x = x.todense()
    if isinstance(x, u.Quantity):
        raise TypeError(f"{name} must be unitless spikes; received a Quantity in {x.unit}")
    x = as_numeric(x, name)
    if x.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},); received shape {x.shape}")
    return x


def _in_unit(x, unit, name: str, dtype):
    """The mantissa of ``x`` in ``unit`` (the weights' unit), as ``dtype``."""
    if isinstance(x, u.Quantity):
        if x.unit.dim != unit.dim:
            raise u.UnitMismatchError(f"{name} is in {x.unit}, which does not convert to the "
                                      f"weights' unit {unit}")
        x = x.to_decimal(unit)
    elif not unit.is_unitless:
        raise u.UnitMismatchError(f"{name} must be in the weights' unit {unit}; received a "
                                  f"unitless {type_name(x)}")
    return as_numeric(x, name).astype(dtype)


def _trace(x, size: int, unit, name: str, dtype):
    x = _in_unit(x, unit, name, dtype)
    if x.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},); received shape {x.shape}")
    return x


def _bounds(w_min, w_max, unit, dtype):
    values = []
    for name, bound, default in (('w_min', w_min, -jnp.inf), ('w_max', w_max, jnp.inf)):
        if bound is None:
            values.append(jnp.asarray(default, dtype))
            continue
        value = _in_unit(bound, unit, name, dtype)
        if value.ndim != 0:
            raise ValueError(f"{name} must be a scalar; received shape {value.shape}")
        values.append(value)
    if w_min is not None and w_max is not None and is_concrete(*values) \
            and float(values[0]) > float(values[1]):
        raise ValueError(f"w_min must not exceed w_max; received w_min={w_min}, w_max={w_max}")
    return jnp.stack(values)


def _spikes_and_trace(pre: bool, shape, spikes, trace, unit, dtype):
    """The validated spikes and trace of an update of a ``shape`` matrix (weights in ``unit``)."""
    m, n = shape
    spike_name, trace_name = ('pre_spike', 'post_trace') if pre else ('post_spike', 'pre_trace')
    return (_spikes(spikes, m if pre else n, spike_name),
            _trace(trace, n if pre else m, unit, trace_name, dtype))


def _float_weights(w, what: str):
    if not jnp.issubdtype(w.dtype, jnp.floating):
        raise TypeError(f"{what} must have a floating dtype to be updated; received {w.dtype}")


def update_sparse(matrix, pre: bool, spikes, trace, w_min, w_max, backend):
    """The update of a stored-entry matrix (the body of ``update_on_pre`` / ``update_on_post``)."""
    name = type(matrix).__name__
    from ._base import SparseMatrix
    if type(matrix)._grouping is SparseMatrix._grouping:
        raise TypeError(f"{name} stores no per-synapse weights to update (its weights are "
                        f"regenerated from its parameters); convert it first, e.g. m.tocsr()")
    if matrix.is_homogeneous:
        raise ValueError(f"{name} has one weight for all synapses (homogeneous data), so there is "
                         f"nothing per synapse to update; give each synapse its own weight "
                         f"first: m = m.with_data(m.full_data())")
    w, unit = split_unit(matrix.data)  # in its stored shape: reshaping would cost a copy
    _float_weights(w, f"{name} data")
    spikes, trace = _spikes_and_trace(pre, matrix.shape, spikes, trace, unit, w.dtype)
    group = matrix._grouping(pre)
    perm = group.perm if group.perm is not None else jnp.zeros(0, group.ptr.dtype)
    new, = entry_update.bind(w, group.ptr, perm, group.other, spikes, trace,
                             _bounds(w_min, w_max, unit, w.dtype),
                             info=UpdateInfo(group.layout),
                             backend=backend)
    return matrix.with_data(with_unit(new, unit))


def _update_dense(weight, pre: bool, spikes, trace, w_min, w_max, backend):
    w, unit = split_unit(weight)
    w = as_numeric(w, 'weight')
    if w.ndim != 2:
        raise ValueError(f"weight must be a 2-D (num_pre, num_post) array; received shape "
                         f"{w.shape}")
    _float_weights(w, 'weight')
    spikes, trace = _spikes_and_trace(pre, w.shape, spikes, trace, unit, w.dtype)
    new, = dense_update.bind(w, spikes, trace, _bounds(w_min, w_max, unit, w.dtype),
                             axis=0 if pre else 1, backend=backend)
    return with_unit(new, unit)


# ---------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------

def update_dense_on_binary_pre(weight, pre_spike, post_trace, w_min=None, w_max=None, *,
                               backend=None):
    """Dense weights after presynaptic spikes: ``weight[i, :] += post_trace`` for spiking ``i``.

    Parameters
    ----------
    weight : array or Quantity
        The weights, shape ``(num_pre, num_post)``.
    pre_spike : array or BinaryArray
        Presynaptic spikes, shape ``(num_pre,)``; any nonzero value is a spike.
    post_trace : array or Quantity
        The postsynaptic trace, shape ``(num_post,)``, in the weights' unit.
    w_min, w_max : scalar or None
        Bounds applied to the updated entries (others are left as they are).
    backend : str, optional
        ``'numba'`` (CPU default: visits the spiking rows only) or ``'jax'``.

    Returns
    -------
    array or Quantity
        The updated weights, with the shape, dtype and unit of ``weight``.

    Examples
    --------
    >>> import jax.numpy as jnp, brainevent
    >>> w = jnp.zeros((2, 3))
    >>> brainevent.update_dense_on_binary_pre(w, jnp.array([True, False]),
    ...                                       jnp.array([0.5, 1.0, 2.0]), w_max=1.0)
    Array([[0.5, 1. , 1. ],
           [0. , 0. , 0. ]], dtype=float32)
    """
    return _update_dense(weight, True, pre_spike, post_trace, w_min, w_max, backend)


def update_dense_on_binary_post(weight, pre_trace, post_spike, w_min=None, w_max=None, *,
                                backend=None):
    """Dense weights after postsynaptic spikes: ``weight[:, j] += pre_trace`` for spiking ``j``.

    Arguments as in :func:`update_dense_on_binary_pre`, with ``pre_trace`` of
    shape ``(num_pre,)`` and ``post_spike`` of shape ``(num_post,)``.

    Examples
    --------
    >>> import jax.numpy as jnp, brainevent
    >>> w = jnp.zeros((2, 3))
    >>> brainevent.update_dense_on_binary_post(w, jnp.array([1.0, -1.0]),
    ...                                        jnp.array([0, 0, 1]), w_min=-0.5)
    Array([[ 0. ,  0. ,  1. ],
           [ 0. ,  0. , -0.5]], dtype=float32)
    """
    return _update_dense(weight, False, post_spike, pre_trace, w_min, w_max, backend)


def _dense_like(x) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, u.Quantity))


def update_on_binary_pre(matrix, pre_spike, post_trace, w_min=None, w_max=None, *, backend=None):
    """Weights after presynaptic spikes, for any format: synapse ``(i, j)`` of a spiking ``i``
    becomes ``clip(w + post_trace[j], w_min, w_max)``.

    ``matrix`` is a dense 2-D array or a matrix that stores its synapses (COO,
    CSR, CSC, FixedPostNumConn, FixedPreNumConn); the result has the same type,
    structure and unit, with new weights. Same as ``matrix.update_on_pre(...)``.

    Examples
    --------
    >>> import jax.numpy as jnp, brainevent
    >>> w = brainevent.FixedPostNumConn((jnp.zeros((2, 2)), jnp.array([[0, 2], [1, 2]])),
    ...                                 shape=(2, 3))
    >>> brainevent.update_on_binary_pre(w, jnp.array([0, 1]), jnp.array([1., 2., 3.])).data
    Array([[0., 0.],
           [2., 3.]], dtype=float32)
    """
    if _dense_like(matrix):
        return update_dense_on_binary_pre(matrix, pre_spike, post_trace, w_min, w_max,
                                          backend=backend)
    return _sparse(matrix, 'update_on_binary_pre').update_on_pre(
        pre_spike, post_trace, w_min, w_max, backend=backend)


def update_on_binary_post(matrix, pre_trace, post_spike, w_min=None, w_max=None, *,
                          backend=None):
    """Weights after postsynaptic spikes, for any format: synapse ``(i, j)`` of a spiking ``j``
    becomes ``clip(w + pre_trace[i], w_min, w_max)``.

    As :func:`update_on_binary_pre`; same as ``matrix.update_on_post(...)``.

    Examples
    --------
    >>> import jax.numpy as jnp, brainevent
    >>> w = brainevent.CSR((jnp.ones(3), jnp.array([0, 2, 2]), jnp.array([0, 2, 3])),
    ...                    shape=(2, 3))
    >>> brainevent.update_on_binary_post(w, jnp.array([0.5, -0.5]), jnp.array([0, 0, 1])).data
    Array([1. , 1.5, 0.5], dtype=float32)
    """
    if _dense_like(matrix):
        return update_dense_on_binary_post(matrix, pre_trace, post_spike, w_min, w_max,
                                           backend=backend)
    return _sparse(matrix, 'update_on_binary_post').update_on_post(
        pre_trace, post_spike, w_min, w_max, backend=backend)


def _sparse(matrix, fname):
    from ._base import SparseMatrix
    if not isinstance(matrix, SparseMatrix):
        raise TypeError(f"{fname} takes a dense 2-D array or a sparse matrix; received "
                        f"{type_name(matrix)}")
    return matrix


_FORMAT_DOC = """Weights of a {cls} after {side}synaptic spikes (see :func:`update_on_binary_{side}`).

Synapse ``(i, j)`` of a spiking {who} becomes ``clip(w + {trace}[{idx}], w_min, w_max)``;
returns a {cls} with the same indices and new ``data``. {cost}

Examples
--------
>>> import jax.numpy as jnp, brainevent
>>> w = brainevent.{cls}(jnp.array([[0., 1.], [2., 0.]]))
>>> brainevent.update_{fmt}_on_binary_{side}(w, {args}).todense()
Array([[0. , 1.5],
       [2. , 0. ]], dtype=float32)
"""

_COSTS = {
    ('csr', 'pre'): "Visits the rows of the spiking neurons.",
    ('csr', 'post'): "Visits the entries of each spiking column through a column grouping "
                     "computed once per structure (cached).",
    ('csc', 'pre'): "Visits the entries of each spiking row through a row grouping computed "
                    "once per structure (cached).",
    ('csc', 'post'): "Visits the columns of the spiking neurons.",
    ('coo', 'pre'): "Visits the entries of each spiking row through a grouping computed once "
                    "per structure (cached).",
    ('coo', 'post'): "Visits the entries of each spiking column through a grouping computed "
                     "once per structure (cached).",
}


def format_update(cls, pre: bool):
    """The public ``update_<format>_on_binary_<side>`` function of ``cls``."""
    fmt, side = cls.format, 'pre' if pre else 'post'
    name = f'update_{fmt}_on_binary_{side}'

    def check(matrix):
        if not isinstance(matrix, cls):
            raise TypeError(f"{name} takes a {cls.__name__}; received {type_name(matrix)} "
                            f"(update_on_binary_{side} accepts every format)")
        return matrix

    if pre:
        def update(matrix, pre_spike, post_trace, w_min=None, w_max=None, *, backend=None):
            return check(matrix).update_on_pre(pre_spike, post_trace, w_min, w_max,
                                               backend=backend)
        args = 'jnp.array([1, 0]), jnp.array([0., 0.5])'
    else:
        def update(matrix, pre_trace, post_spike, w_min=None, w_max=None, *, backend=None):
            return check(matrix).update_on_post(pre_trace, post_spike, w_min, w_max,
                                                backend=backend)
        args = 'jnp.array([0.5, 0.]), jnp.array([0, 1])'
    update.__name__ = update.__qualname__ = name
    update.__module__ = cls.__module__  # its example runs with the format module's doctests
    update.__doc__ = _FORMAT_DOC.format(
        cls=cls.__name__, fmt=fmt, side=side, who='``i``' if pre else '``j``',
        trace='post_trace' if pre else 'pre_trace', idx='j' if pre else 'i',
        cost=_COSTS[fmt, side], args=args)
    return update
