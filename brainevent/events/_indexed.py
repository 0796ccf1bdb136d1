"""Indexed events: the positions of the active neurons in a fixed-size buffer."""

import jax
import jax.numpy as jnp
import numpy as np

from .._misc import as_index_array, as_numeric, check_shape, is_concrete
from ._binary import BinaryArray, EventArray

__all__ = ['IndexedBinary1d', 'IndexedBinary2d']


def _capacity(max_events, n: int) -> int:
    if max_events is None:
        return n
    if isinstance(max_events, (bool, np.bool_)) or not isinstance(max_events, (int, np.integer)):
        raise TypeError(f"max_events must be a non-negative int; received {max_events!r}")
    if max_events < 0:
        raise ValueError(f"max_events must be a non-negative int; received {max_events!r}")
    return int(max_events)


def _dense_1d(indices, count, n: int):
    """Bool mask of length ``n`` from the first ``count`` entries of ``indices``."""
    valid = jnp.arange(indices.shape[-1]) < count
    slots = jnp.where(valid, indices, n)  # invalid entries land in a spare slot
    return jnp.zeros(n + 1, jnp.bool_).at[slots].set(True)[:n]


def _indices_1d(x, capacity: int):
    active = x != 0
    indices = jnp.nonzero(active, size=capacity, fill_value=x.shape[0])[0].astype(jnp.int32)
    return indices, jnp.sum(active, dtype=jnp.int32)


def _check_dense(x, ndim: int, cls):
    if isinstance(x, EventArray):
        x = x.todense()
    x = as_numeric(x, 'x')
    if x.ndim != ndim:
        raise ValueError(f"{cls.__name__}.from_dense needs a {ndim}-D array; received shape "
                         f"{x.shape}")
    return x


def _check_overflow(count, capacity: int):
    if is_concrete(count) and int(jnp.max(count, initial=0)) > capacity:
        raise ValueError(f"{int(jnp.max(count))} events do not fit in max_events={capacity}; "
                         f"raise max_events (default: the number of neurons)")


class _IndexedBase(EventArray):
    """Fields ``indices`` (int32 buffer), ``count`` (active entries), static ``shape``."""

    def __init__(self, indices, count, shape):
        self.shape = check_shape(shape, 'shape', self._ndim)
        self.indices = as_index_array(indices, 'indices', self._ndim)
        self.count = jnp.asarray(count)
        if self.count.shape != self.shape[:-1]:
            raise ValueError(f"count must have shape {self.shape[:-1]}; received "
                             f"{self.count.shape}")
        if self.indices.shape[:-1] != self.shape[:-1]:
            raise ValueError(f"indices must have shape {self.shape[:-1]} + (max_events,); "
                             f"received {self.indices.shape}")

    dtype = jnp.dtype(jnp.bool_)

    @property
    def max_events(self) -> int:
        return self.indices.shape[-1]

    def to_binary(self) -> BinaryArray:
        """The same events as a :class:`BinaryArray` of bools."""
        return BinaryArray(self.todense())

    def __repr__(self):
        return f"{type(self).__name__}(shape={self.shape}, max_events={self.max_events})"

    def tree_flatten(self):
        return (self.indices, self.count), self.shape

    @classmethod
    def tree_unflatten(cls, shape, children):
        obj = object.__new__(cls)
        obj.indices, obj.count = children
        obj.shape = shape
        return obj


@jax.tree_util.register_pytree_node_class
class IndexedBinary1d(_IndexedBase):
    """Spikes of one step stored as the indices of the active neurons.

    ``indices[:count]`` are the active neurons (ascending when built by
    :meth:`from_dense`); the rest of the fixed-size buffer is padding. Products
    with it loop over the stored indices only.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, brainevent
    >>> ev = jax.jit(brainevent.IndexedBinary1d.from_dense)(jnp.array([0., 1., 0., 1.]))
    >>> ev.indices[:ev.count]
    Array([1, 3], dtype=int32)
    >>> ev.todense()
    Array([False,  True, False,  True], dtype=bool)
    """

    _ndim = 1

    @classmethod
    def from_dense(cls, x, max_events: int | None = None) -> 'IndexedBinary1d':
        """Build from dense spikes (nonzero = active); works inside ``jit``.

        ``max_events`` (default: the number of neurons, which never overflows)
        is the buffer size. Outside ``jit`` more events than ``max_events`` raise
        ``ValueError``; inside ``jit`` the events past the buffer are dropped.
        """
        x = _check_dense(x, 1, cls)
        capacity = _capacity(max_events, x.shape[0])
        indices, count = _indices_1d(x, capacity)
        _check_overflow(count, capacity)
        return cls(indices, jnp.minimum(count, capacity), x.shape)

    def todense(self) -> jax.Array:
        """Bool mask of shape ``(n,)``."""
        return _dense_1d(self.indices, self.count, self.shape[0])


@jax.tree_util.register_pytree_node_class
class IndexedBinary2d(_IndexedBase):
    """A batch of steps (batch x neurons), each row stored as indices plus a count.

    Examples
    --------
    >>> import jax.numpy as jnp, brainevent
    >>> ev = brainevent.IndexedBinary2d.from_dense(jnp.array([[1, 0, 1], [0, 0, 1]]))
    >>> ev.count
    Array([2, 1], dtype=int32)
    """

    _ndim = 2

    @classmethod
    def from_dense(cls, x, max_events: int | None = None) -> 'IndexedBinary2d':
        """Build from dense 2-D spikes; ``max_events`` bounds the events per row."""
        x = _check_dense(x, 2, cls)
        capacity = _capacity(max_events, x.shape[1])
        indices, count = jax.vmap(lambda row: _indices_1d(row, capacity))(x)
        _check_overflow(count, capacity)
        return cls(indices.reshape(x.shape[0], capacity), jnp.minimum(count, capacity), x.shape)

    def todense(self) -> jax.Array:
        """Bool mask of shape ``(batch, n)``."""
        n = self.shape[1]
        if self.shape[0] == 0:
            return jnp.zeros(self.shape, jnp.bool_)
        return jax.vmap(lambda i, c: _dense_1d(i, c, n))(self.indices, self.count)
