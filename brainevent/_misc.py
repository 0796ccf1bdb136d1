"""Small helpers shared by the formats: units, shapes, index arrays."""

import numbers
import operator

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

__all__ = ['split_unit', 'with_unit', 'check_shape', 'as_index_array', 'index_dtype',
           'is_concrete', 'type_name', 'check_items', 'as_numeric']


def type_name(x) -> str:
    t = type(x)
    return t.__name__ if t.__module__ == 'builtins' else f"{t.__module__}.{t.__qualname__}"


def split_unit(x):
    """Return ``(mantissa, unit)``; the unit of a plain array is unitless."""
    if isinstance(x, u.Quantity):
        return x.mantissa, x.unit
    return x, u.UNITLESS


def with_unit(x, unit):
    """Attach ``unit`` to ``x``; unitless values stay plain arrays."""
    if unit.is_unitless:
        return x
    return u.Quantity(x, unit=unit)


def is_concrete(*xs) -> bool:
    """True when none of ``xs`` is a tracer (their values can be inspected)."""
    return not any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves(xs))


def check_shape(shape, name: str = 'shape', ndim: int = 2) -> tuple[int, ...]:
    """Validate a matrix shape: ``ndim`` non-negative Python integers."""
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"{name} must be a tuple of {ndim} integers; received {shape!r}") from None
    if len(dims) != ndim:
        raise ValueError(f"{name} must have {ndim} entries; received {shape!r} "
                         f"with {len(dims)}")
    out = []
    for d in dims:
        if isinstance(d, (bool, np.bool_)) or not isinstance(d, (numbers.Integral, np.integer)):
            if isinstance(d, (float, np.floating)) and float(d).is_integer():
                d = int(d)
            else:
                raise TypeError(f"{name} must contain integers; received {shape!r}")
        d = operator.index(d)
        if d < 0:
            raise ValueError(f"{name} must contain non-negative integers; received {shape!r}")
        out.append(d)
    return tuple(out)


def index_dtype(*sizes) -> np.dtype:
    """int32 when every size fits, otherwise int64 (which needs ``jax_enable_x64``)."""
    if max(sizes, default=0) < np.iinfo(np.int32).max:
        return np.dtype(np.int32)
    if not jax.config.jax_enable_x64:
        raise ValueError(f"a dimension or entry count of {max(sizes)} needs 64-bit indices; "
                         f"enable them with jax.config.update('jax_enable_x64', True)")
    return np.dtype(np.int64)


def as_numeric(x, name: str):
    """``x`` as a JAX array with a bool or numeric dtype, or a ``TypeError`` naming ``name``."""
    if isinstance(x, u.Quantity):
        raise TypeError(f"{name} must be an array without units; received a Quantity in "
                        f"{x.unit}")
    if not isinstance(x, jax.Array):
        try:
            x = np.asarray(x)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be a numeric array; received {type_name(x)} "
                            f"({err})") from None
        if x.dtype.kind not in 'biufc':
            raise TypeError(f"{name} must have a bool or numeric dtype; received dtype "
                            f"{x.dtype}")
    return jnp.asarray(x)


def as_index_array(x, name: str, ndim: int = 1):
    """Convert ``x`` to a JAX integer array of rank ``ndim`` (no value checks)."""
    arr = as_numeric(x, name)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D; received shape {arr.shape}")
    if arr.dtype == jnp.bool_ or not jnp.issubdtype(arr.dtype, jnp.integer):
        if arr.size == 0:
            return arr.astype(jnp.int32)
        raise TypeError(f"{name} must have an integer dtype; received {arr.dtype}")
    return arr


def check_items(items, cls, fname: str, what: str) -> list:
    """``items`` as a non-empty list of ``cls`` instances, or a clear error."""
    items = list(items)
    if not items:
        raise ValueError(f"{fname} needs at least one {what}")
    for i, item in enumerate(items):
        if not isinstance(item, cls):
            raise TypeError(f"{fname} takes {cls.__name__} {what}s; item {i} is "
                            f"{type_name(item)}")
    return items


def check_seed(seed):
    """``seed`` as a uint32 scalar (traced seeds pass through); ``None`` draws one."""
    if seed is None:
        return jnp.asarray(np.uint32(np.random.SeedSequence().entropy % (1 << 32)))
    if isinstance(seed, jax.core.Tracer):
        arr = as_numeric(seed, 'seed')
        if arr.ndim != 0:
            raise ValueError(f"seed must be a scalar; received shape {arr.shape}")
        if not jnp.issubdtype(arr.dtype, jnp.integer):
            raise TypeError(f"seed must be an integer in [0, 2**32); received dtype {arr.dtype}")
        return arr.astype(jnp.uint32)
    value = np.asarray(seed)
    if value.dtype == np.bool_ or value.dtype.kind not in 'iu':
        raise TypeError(f"seed must be an integer in [0, 2**32); received "
                        f"{'a bool' if value.dtype == np.bool_ else f'dtype {value.dtype}'}")
    if value.ndim != 0:
        raise ValueError(f"seed must be a scalar; received shape {value.shape}")
    if not 0 <= int(value) < 1 << 32:
        raise ValueError(f"seed must be an integer in [0, 2**32); received {int(value)}")
    return jnp.asarray(np.uint32(int(value)))
