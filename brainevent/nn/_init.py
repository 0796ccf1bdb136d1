"""Weight distributions for the layers: ``Normal(mean, std)`` and ``Uniform(low, high)``.

A distribution is a small immutable spec. A layer that stores its weights
draws them with ``spec(key, shape)``; :class:`~brainevent.nn.EventFixedProb`
with JITC storage hands the two parameters to ``JITCNormalR`` / ``JITCUniformR``
instead, which regenerate the weights in every product. Either way the
parameters may carry brainunit units (both in one dimension; the second is
converted to the unit of the first).
"""

import math
import numbers

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

from .._misc import is_concrete, split_unit, type_name, with_unit
from ..formats import JITCNormalR, JITCUniformR

__all__ = ['Normal', 'Uniform']


def _scalar_param(value, name: str, owner: str, alternatives: str = ''):
    """``value`` as a scalar JAX array (unitless mantissa) with its unit.

    ``alternatives`` names what else the argument may be, for the message.
    """
    mantissa, unit = split_unit(value)
    if isinstance(mantissa, (bool, np.bool_)) or not isinstance(
            mantissa, (numbers.Real, np.number, np.ndarray, jax.Array)):
        raise TypeError(f"{owner}: {name} must be a real number (or a brainunit Quantity)"
                        f"{alternatives}; received {value!r} ({type_name(value)})")
    arr = jnp.asarray(mantissa)
    if arr.ndim != 0 or not jnp.issubdtype(arr.dtype, jnp.number):
        raise ValueError(f"{owner}: {name} must be a real scalar; received shape {arr.shape}, "
                         f"dtype {arr.dtype}")
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.zeros((), float).dtype)
    if is_concrete(arr) and not math.isfinite(float(arr)):
        raise ValueError(f"{owner}: {name} must be finite; received {float(arr)}")
    return arr, unit


class _Distribution:
    """Two scalar parameters, a draw and the JITC class that regenerates the same law."""

    __slots__ = ('_theta', '_unit')
    _names: tuple[str, str]
    _floor: str  # the second parameter is at least this: '0', or the first parameter
    _jitc_class: type

    def __init__(self, first, second):
        owner = type(self).__name__
        a, unit = _scalar_param(first, self._names[0], owner)
        b, second_unit = _scalar_param(second, self._names[1], owner)
        if second_unit != unit:
            if second_unit.dim != unit.dim:
                raise ValueError(f"{owner}: {self._names[1]} is in {second_unit}, which does not "
                                 f"convert to {unit} (the unit of {self._names[0]})")
            b = jnp.asarray(u.Quantity(second).to_decimal(unit))
        if is_concrete(a, b):
            floor = 0.0 if self._floor == '0' else float(a)
            if float(b) < floor:
                raise ValueError(f"{owner}: {self._names[1]} must be >= {self._floor}; received "
                                 f"{self._names[0]}={float(a)}, {self._names[1]}={float(b)}")
        self._theta = (a, b)
        self._unit = unit

    def _params(self):
        """The two parameters, with the unit."""
        return tuple(with_unit(t, self._unit) for t in self._theta)

    def _sample(self, key, shape, dtype):
        """Unitless draws of ``shape`` from ``key``."""
        raise NotImplementedError

    def __call__(self, key, shape):
        """Draw an array of ``shape`` (a Quantity when the parameters have units)."""
        dtype = jnp.result_type(*self._theta)
        return with_unit(self._sample(key, tuple(shape), dtype), self._unit)

    def jitc(self, n_pre: int, n_post: int, prob, seed):
        """The JITC matrix of connection probability ``prob`` whose entries follow this law."""
        return self._jitc_class(n_pre, n_post, prob, *self._params(), seed=seed)

    def __repr__(self):
        if not is_concrete(self._theta):
            return f"{type(self).__name__}(traced)"
        unit = '' if self._unit.is_unitless else f" {self._unit}"
        values = ', '.join(f"{n}={float(t):.6g}{unit}" for n, t in zip(self._names, self._theta))
        return f"{type(self).__name__}({values})"

    def __getattr__(self, name):  # the parameters by name: mean, std, low, high
        if name in type(self)._names:
            return self._params()[type(self)._names.index(name)]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


class Normal(_Distribution):
    """Weights drawn from a normal distribution: ``mean + std * z``, ``z`` standard normal.

    Give it as the ``weight`` of a layer. :class:`EventFixedProb` with JITC
    storage regenerates the weights in every product (``JITCNormalR``); the
    other layers, and CSR storage, draw one weight per synapse once, from the
    layer's ``seed``.

    Parameters
    ----------
    mean : float or Quantity
        The mean weight.
    std : float or Quantity
        The standard deviation, ``>= 0``, in the dimension of ``mean``.

    Examples
    --------
    >>> import jax, brainevent
    >>> init = brainevent.nn.Normal(1.0, 0.1)
    >>> w = init(jax.random.key(0), (1000,))
    >>> round(float(w.mean()), 1), round(float(w.std()), 2)
    (1.0, 0.1)
    >>> init
    Normal(mean=1, std=0.1)
    """

    __slots__ = ()
    _names, _floor, _jitc_class = ('mean', 'std'), '0', JITCNormalR

    def __init__(self, mean, std):
        super().__init__(mean, std)

    def _sample(self, key, shape, dtype):
        mean, std = self._theta
        return mean + std * jax.random.normal(key, shape, dtype)


class Uniform(_Distribution):
    """Weights drawn uniformly from ``[low, high]``.

    Give it as the ``weight`` of a layer; as for :class:`Normal`, JITC storage
    regenerates the weights (``JITCUniformR``) and the other storages draw them
    once from the layer's ``seed``.

    Parameters
    ----------
    low, high : float or Quantity
        The bounds, ``low <= high``, in one dimension.

    Examples
    --------
    >>> import jax, brainevent
    >>> w = brainevent.nn.Uniform(-1.0, 1.0)(jax.random.key(0), (1000,))
    >>> bool((w >= -1).all() and (w <= 1).all())
    True
    """

    __slots__ = ()
    _names, _floor, _jitc_class = ('low', 'high'), 'low', JITCUniformR

    def __init__(self, low, high):
        super().__init__(low, high)

    def _sample(self, key, shape, dtype):
        low, high = self._theta
        return jax.random.uniform(key, shape, dtype, low, high)


def is_distribution(weight) -> bool:
    return isinstance(weight, _Distribution)
