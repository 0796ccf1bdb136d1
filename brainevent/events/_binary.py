"""Event arrays: spikes that make products event-driven."""

import jax
import jax.numpy as jnp

from .._misc import as_numeric, check_items, type_name
from ._dispatch import MatmulOperators

__all__ = ['EventArray', 'BinaryArray', 'concatenate', 'stack']


class EventArray(MatmulOperators):
    """Base class of event arrays; products with it go through the registry.

    Examples
    --------
    >>> import jax.numpy as jnp, brainevent
    >>> isinstance(brainevent.BinaryArray(jnp.ones(3)), brainevent.EventArray)
    True
    """

    __slots__ = ()

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def __len__(self):
        if not self.shape:
            raise TypeError('len() of a 0-d event array')
        return self.shape[0]


@jax.tree_util.register_pytree_node_class
class BinaryArray(EventArray):
    """Spikes of one step (1-D) or of a batch (2-D, batch x neurons).

    An element is a spike if it is nonzero; bool ``True`` counts. A product with
    a ``BinaryArray`` equals the dense product of ``(value != 0)`` cast to the
    weight dtype, while its work is proportional to the number of spikes where
    the matrix format allows it. The gradient with respect to ``value`` is that
    of the dense product, as if the spikes were the float values (so surrogate
    gradients flow through).

    Indexing, slicing, ``.T``, ``reshape`` and :func:`brainevent.concatenate` /
    :func:`brainevent.stack` return ``BinaryArray`` again.

    Parameters
    ----------
    value : array_like
        Bool or numeric spikes, without units.

    Examples
    --------
    >>> import jax.numpy as jnp, brainevent
    >>> spikes = brainevent.BinaryArray(jnp.array([True, False, True]))
    >>> w = jnp.array([[1., 2.], [3., 4.], [5., 6.]])
    >>> spikes @ w
    Array([6., 8.], dtype=float32)
    >>> spikes[:2]
    BinaryArray(shape=(2,), dtype=bool)
    """

    __slots__ = ('value',)

    def __init__(self, value):
        if isinstance(value, BinaryArray):
            value = value.value
        if isinstance(value, EventArray):
            raise TypeError(f"BinaryArray takes a dense array; received {type_name(value)} "
                            f"(use its .todense())")
        self.value = as_numeric(value, 'BinaryArray value (spikes)')

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)

    @property
    def dtype(self):
        return self.value.dtype

    def __repr__(self):
        return f"BinaryArray(shape={self.shape}, dtype={self.dtype})"

    def __getitem__(self, index):
        return BinaryArray(self.value[index])

    @property
    def T(self) -> 'BinaryArray':
        return BinaryArray(self.value.T)

    def transpose(self, *axes) -> 'BinaryArray':
        return BinaryArray(self.value.transpose(*axes))

    def reshape(self, *shape) -> 'BinaryArray':
        return BinaryArray(self.value.reshape(*shape))

    def astype(self, dtype) -> 'BinaryArray':
        return BinaryArray(self.value.astype(dtype))

    def todense(self) -> jax.Array:
        """The spike values as a plain array."""
        return self.value

    def tree_flatten(self):
        return (self.value,), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        obj = object.__new__(cls)
        obj.value = children[0]
        return obj


def _values(arrays, fname):
    return [a.value for a in check_items(arrays, BinaryArray, fname, 'array')]


def concatenate(arrays, axis: int = 0) -> BinaryArray:
    """Join event arrays along an existing axis; the result is a ``BinaryArray``.

    Examples
    --------
    >>> import jax.numpy as jnp, brainevent
    >>> exc = brainevent.BinaryArray(jnp.array([1., 0.]))
    >>> inh = brainevent.BinaryArray(jnp.array([0., 1., 1.]))
    >>> brainevent.concatenate([exc, inh]).shape
    (5,)
    """
    return BinaryArray(jnp.concatenate(_values(arrays, 'concatenate'), axis=axis))


def stack(arrays, axis: int = 0) -> BinaryArray:
    """Stack event arrays along a new axis (e.g. steps into a batch).

    Examples
    --------
    >>> import jax.numpy as jnp, brainevent
    >>> a = brainevent.BinaryArray(jnp.array([True, False]))
    >>> brainevent.stack([a, a]).shape
    (2, 2)
    """
    return BinaryArray(jnp.stack(_values(arrays, 'stack'), axis=axis))
