"""What every layer shares: the pytree, the input path, the weight leaf, argument checks.

A layer holds one connectivity matrix ``conn`` of shape ``(n_pre, n_post)`` (a
brainevent format, or a dense array for :class:`EventLinear`) as its only
pytree child, plus static settings used in ``repr``. Calling it computes
``x @ conn``: as events (``BinaryArray``) for a ``BinaryArray``, or for bool
input in an event layer; as the float product for float input (graded values).
"""

import numbers

import brainunit as u
import jax
import numpy as np

from .._misc import as_numeric, is_concrete, split_unit, type_name
from ..events import BinaryArray, EventArray
from ..formats._fixed import _flag

__all__ = ['Layer']


class _Default(float):
    """A default value that can be told apart from the same value passed explicitly.

    It prints as the number itself, so signatures read ``prob=0.2``.
    """

    __slots__ = ()


def default(value: float) -> float:
    return _Default(value)


def is_default(value) -> bool:
    return isinstance(value, _Default)


def one_of(layer: str, name: str, value, alias: str, alias_value):
    """The argument given under ``name`` or under its alias (``None``: not given)."""
    if alias_value is None:
        return value
    if not is_default(value):
        raise TypeError(f"{layer} got both {name}={_short(value)} and {alias}="
                        f"{_short(alias_value)}; {alias} is another name for {name}: give one")
    return alias_value


def _short(value) -> str:
    if hasattr(value, 'shape') and getattr(value, 'ndim', 0):
        return f"<{type(value).__name__} of shape {tuple(value.shape)}>"
    return repr(value)


def check_count(value, name: str, layer: str, what: str = '', hint: str = '') -> int:
    """A positive Python or numpy integer (a neuron count, connections per neuron).

    ``what`` follows "must be a positive int" in the message; ``hint`` ends the
    message of a non-integer.
    """
    expected = f"{layer}: {name} must be a positive int{what}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{expected}; received {value!r} ({type_name(value)}){hint}")
    if value < 1:
        raise ValueError(f"{expected}; received {int(value)}")
    return int(value)


def check_flag(value, name: str, layer: str) -> bool:
    return _flag(value, f"{layer}: {name}")


def check_self_connections(allow: bool, n_pre: int, n_post: int, layer: str) -> bool:
    allow = check_flag(allow, 'allow_self_connections', layer)
    if not allow and n_pre != n_post:
        raise ValueError(f"{layer}: allow_self_connections=False needs n_pre == n_post (one "
                         f"population connected to itself); received n_pre={n_pre}, "
                         f"n_post={n_post}")
    return allow


def describe(x) -> str:
    """``float32[100, 10]`` (plus the unit): a weight in a ``repr``."""
    mantissa, unit = split_unit(x)
    dims = ', '.join(str(d) for d in mantissa.shape)
    text = f"{mantissa.dtype}[{dims}]"
    if mantissa.size == 1 and is_concrete(mantissa):
        text = f"{float(np.asarray(mantissa).reshape(-1)[0]):.6g}"
    return text if unit.is_unitless else f"{text} {unit}"


class Layer:
    """Base class of the layers of :mod:`brainevent.nn`: a pytree around ``conn``.

    A layer holds its connectivity matrix ``conn`` (shape ``(n_pre, n_post)``)
    as its only pytree child; ``weight`` is that matrix's weight leaf and
    :meth:`with_weight` puts new weights in the same structure, which is how
    gradients are taken (the matrix also holds integer indices). Subclasses set
    ``event`` (whether bool input runs the event-driven product) and ``_static`` (the
    names of the settings kept as auxiliary data).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, brainevent
    >>> layer = brainevent.nn.EventFixedProb(20, 10, prob=0.3, seed=0)
    >>> isinstance(layer, brainevent.nn.Layer), layer.n_pre, layer.n_post
    (True, 20, 10)
    >>> x = (jnp.arange(20) % 3 == 0).astype(float)
    >>> g = jax.grad(lambda w: layer.with_weight(w)(x).sum())(layer.weight)
    >>> g.shape == layer.weight.shape
    True
    """

    event: bool = True
    _static: tuple[str, ...] = ()
    _shown: tuple[str, ...] = ()  # settings shown in the repr, between n_post and weight
    conn: object

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        jax.tree_util.register_pytree_node_class(cls)

    # -- pytree ----------------------------------------------------------
    def tree_flatten(self):
        return (self.conn,), tuple(getattr(self, name) for name in self._static)

    @classmethod
    def tree_unflatten(cls, aux, children):
        obj = object.__new__(cls)
        obj.conn = children[0]
        for name, value in zip(cls._static, aux):
            setattr(obj, name, value)
        return obj

    def _with_conn(self, conn):
        return self.tree_unflatten(self.tree_flatten()[1], (conn,))

    # -- structure -------------------------------------------------------
    @property
    def n_pre(self) -> int:
        """The number of presynaptic neurons (the input size)."""
        return self.conn.shape[0]

    @property
    def n_post(self) -> int:
        """The number of postsynaptic neurons (the output size)."""
        return self.conn.shape[1]

    @property
    def weight(self):
        """The weight leaf: what :meth:`with_weight` takes and ``jax.grad`` differentiates."""
        return self.conn.data

    def with_weight(self, weight):
        """The same layer (same connectivity) with new weights of the shape of ``.weight``."""
        return self._with_conn(self.conn.with_data(weight))

    def todense(self):
        """The ``(n_pre, n_post)`` weight matrix as a dense array (a Quantity with units)."""
        return self.conn.todense()

    def _weight_repr(self) -> str:
        return describe(self.weight)

    def __repr__(self):
        return (f"{type(self).__name__}(n_pre={self.n_pre}, n_post={self.n_post}"
                f"{''.join(f', {name}={getattr(self, name)!r}' for name in self._shown)}"
                f", weight={self._weight_repr()})")

    # -- the product -----------------------------------------------------
    def _expected(self) -> str:
        return f"(n_pre,) = ({self.n_pre},) or (batch, n_pre) = (batch, {self.n_pre})"

    def _check_input(self, shape) -> None:
        if len(shape) < 1 or shape[-1] != self.n_pre:
            raise ValueError(f"{type(self).__name__}: the input must have shape "
                             f"{self._expected()}; received shape {tuple(shape)}")

    def _float_dtype(self):
        dtype = split_unit(self.weight)[0].dtype
        return dtype if np.issubdtype(dtype, np.floating) else np.float32

    def _matmul(self, operand):
        """``operand @ conn`` for a 1-D or 2-D operand (events or a unitless array)."""
        return operand @ self.conn

    def __call__(self, x):
        """Input of the presynaptic neurons -> input of the postsynaptic ones.

        ``x`` has shape ``(n_pre,)``, ``(batch, n_pre)`` or more leading axes
        (``(..., n_pre)``); the result has shape ``(..., n_post)`` and equals
        ``x @ W`` for every input. Bool spikes run the event-driven product in
        an event layer (work proportional to the spikes), a ``BinaryArray``
        in every layer; float input (0/1 spikes, rates, currents) runs the
        float product, whose gradient with respect to ``x`` flows. Wrap float
        0/1 spikes from a surrogate spike function in ``BinaryArray`` to keep
        both the event-driven cost and the gradient.
        """
        if isinstance(x, EventArray):
            self._check_input(x.shape)
            if not isinstance(x, BinaryArray) or x.ndim <= 2:
                return self._matmul(x)
            values, unit, event = x.value, u.UNITLESS, True
        else:
            values, unit = split_unit(x)
            values = as_numeric(values, f"the input of {type(self).__name__}")
            self._check_input(values.shape)
            event = self.event and values.dtype == np.bool_
            if values.dtype == np.bool_ and not event:  # the float product of 0/1 values
                values = values.astype(self._float_dtype())
        lead = values.shape[:-1]
        flat = values.reshape(-1, self.n_pre) if len(lead) > 1 else values
        out = self._matmul(BinaryArray(flat) if event else flat)
        out = out if unit.is_unitless else out * unit
        return out.reshape(*lead, self.n_post) if len(lead) > 1 else out
