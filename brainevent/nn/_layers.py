"""The layers: EventLinear (dense), EventFixedProb (random, CSR or JITC), FixedNumConn."""

import numbers

import jax
import jax.numpy as jnp
import numpy as np

from .._misc import check_seed, is_concrete, split_unit, type_name, with_unit
from ..formats import CSR, FixedPostNumConn, FixedPreNumConn, JITCMatrix, JITCScalarR
from ._base import Layer, check_count, check_flag, check_self_connections, default, one_of
from ._init import Normal, Uniform, _scalar_param, is_distribution

__all__ = ['EventLinear', 'EventFixedProb', 'FixedNumConn', 'EventFixedNumConn']

_GRADIENTS = """
    Train the weights through :attr:`weight` and :meth:`with_weight`: the layer
    also holds integer indices, so differentiate with respect to the weight
    leaf, not the whole layer::

        def loss(w, x):
            return jnp.sum(layer.with_weight(w)(x) ** 2)

        g = jax.grad(loss)(layer.weight, x)
        layer = layer.with_weight(layer.weight - 0.1 * g)
"""


def _float_weight(weight, name: str):
    """``(mantissa, unit)`` of a weight as a floating JAX array."""
    mantissa, unit = split_unit(weight)
    try:
        arr = jnp.asarray(mantissa)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, an array, a brainunit Quantity or a weight "
                        f"distribution; received {type_name(weight)}") from None
    if arr.dtype == jnp.bool_ or not jnp.issubdtype(arr.dtype, jnp.number):
        raise TypeError(f"{name} must be real numbers; received dtype {arr.dtype}")
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.zeros((), float).dtype)
    return arr, unit


def _stored_weight(weight, shape, seed, layer: str, broadcast: bool):
    """Weights stored one per synapse (``shape``), or one for all when not ``broadcast``.

    ``weight`` is a scalar, an array of ``shape``, or a callable ``weight(key,
    shape)`` (such as :class:`Normal`) called with a key drawn from ``seed``.
    """
    if callable(weight) and not hasattr(weight, 'shape'):
        weight = weight(jax.random.key(check_seed(seed)), shape)
    arr, unit = _float_weight(weight, f"{layer}: weight")
    if arr.ndim == 0:
        arr = jnp.full(shape, arr) if broadcast else arr
    elif arr.shape != tuple(shape):
        raise ValueError(f"{layer}: weight must be a scalar or have shape {tuple(shape)}; "
                         f"received shape {arr.shape}")
    return with_unit(arr, unit)


# ---------------------------------------------------------------------------
# Dense
# ---------------------------------------------------------------------------

class EventLinear(Layer):
    """A dense layer driven by events: ``out = spikes @ weight``.

    The weights form a dense ``(n_pre, n_post)`` array; a product reads only
    the rows of the neurons that spiked, so its work is proportional to the
    number of spikes times ``n_post``. Memory is ``n_pre * n_post`` weights:
    use it for small or fully connected projections (readouts, input layers);
    for sparse connectivity see :class:`EventFixedProb` and
    :class:`EventFixedNumConn`.

    The output is ``x @ weight`` for every input. Bool spikes (or a
    :class:`brainevent.BinaryArray`) run the event-driven product, the
    cheapest form; float input (0/1 spikes, rates) runs the ordinary float
    product. The gradient with respect to the input is that of
    ``x @ weight`` in both cases, so surrogate gradients flow through the
    layer: wrap float 0/1 spikes from a surrogate spike function in
    ``BinaryArray`` to keep the event-driven cost.

    Parameters
    ----------
    n_pre, n_post : int
        The numbers of input and output neurons.
    weight : float, array, Quantity, Normal, Uniform or callable
        A scalar (every weight the same, stored as a full array), an array of
        shape ``(n_pre, n_post)``, or a distribution / function
        ``weight(key, shape)`` drawn once from ``seed``. Units are kept; the
        output then carries them.
    seed : int
        Seed of drawn weights.

    Attributes
    ----------
    weight : array or Quantity
        The ``(n_pre, n_post)`` weights (a pytree leaf; see below).
    conn : array or Quantity
        The same array (for uniformity with the sparse layers).

    Notes
    -----
    A layer is a pytree and can be passed through ``jax.jit``, ``jax.vmap``
    and ``lax.scan``.
    {gradients}
    Examples
    --------
    >>> import jax.numpy as jnp, brainevent
    >>> layer = brainevent.nn.EventLinear(3, 2, weight=jnp.array([[1., 2.], [3., 4.], [5., 6.]]))
    >>> layer(jnp.array([True, False, True]))
    Array([6., 8.], dtype=float32)
    >>> layer(jnp.array([[1., 0., 0.], [0., 1., 1.]]))  # a batch of float spikes
    Array([[ 1.,  2.],
           [ 8., 10.]], dtype=float32)
    >>> layer
    EventLinear(n_pre=3, n_post=2, weight=float32[3, 2])
    """

    def __init__(self, n_pre: int, n_post: int, weight, seed: int = 0):
        name = type(self).__name__
        shape = (check_count(n_pre, 'n_pre', name), check_count(n_post, 'n_post', name))
        self.conn = _stored_weight(weight, shape, check_seed(seed), name, broadcast=True)

    @property
    def weight(self):
        """The ``(n_pre, n_post)`` weights: what :meth:`with_weight` takes."""
        return self.conn

    def with_weight(self, weight):
        """The same layer with new ``(n_pre, n_post)`` weights (units allowed)."""
        return self._with_conn(_stored_weight(weight, self.conn.shape, 0, type(self).__name__,
                                              broadcast=True))

    def todense(self):
        """The weights (already dense)."""
        return self.conn

    def _matmul(self, operand):
        w, unit = split_unit(self.conn)
        return with_unit(operand @ w, unit)


# ---------------------------------------------------------------------------
# Connection with a probability
# ---------------------------------------------------------------------------

def _probability(value, name: str, layer: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.number)):
        raise TypeError(f"{layer}: {name} must be a connection probability, a number in "
                        f"[0, 1]; received {value!r} ({type_name(value)})")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{layer}: {name} must be a connection probability in [0, 1]; "
                         f"received {float(value)}")
    return float(value)


def _storage(storage, trainable, self_connections: bool, layer: str):
    """``(storage, per_synapse)`` from the arguments (see EventFixedProb's docstring)."""
    if storage not in (None, 'csr', 'jitc'):
        raise ValueError(f"{layer}: storage must be 'csr', 'jitc' or None (chosen from "
                         f"trainable); received {storage!r}")
    if trainable is not None:
        trainable = check_flag(trainable, 'trainable', layer)
    if storage == 'jitc':
        if trainable:
            raise ValueError(f"{layer}: storage='jitc' stores no per-synapse weights, but "
                             f"trainable=True asks for them; pass storage='csr' (or "
                             f"trainable=False)")
        if not self_connections:
            raise ValueError(f"{layer}: storage='jitc' cannot leave out self-connections; pass "
                             f"storage='csr' with allow_self_connections=False")
        return 'jitc', False
    per_synapse = trainable is not False
    if storage is None and not per_synapse and self_connections:
        return 'jitc', False
    return 'csr', per_synapse


def _without_diagonal(csr: CSR) -> CSR:
    """The CSR without its entries ``(i, i)`` (eager)."""
    indptr, cols = np.asarray(csr.indptr), np.asarray(csr.indices)
    rows = np.repeat(np.arange(csr.shape[0]), np.diff(indptr))
    keep = rows != cols
    data, unit = split_unit(csr.data)
    counts = np.bincount(rows[keep], minlength=csr.shape[0])
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(indptr.dtype)
    return CSR((with_unit(data[keep], unit), cols[keep], indptr), shape=csr.shape)


class EventFixedProb(Layer):
    """Sparse random connectivity driven by events: each pair connected with probability ``prob``.

    Every pair ``(i, j)`` is connected with probability ``prob``,
    independently, drawn from ``seed`` (the structure of
    ``brainevent.JITCScalarR(n_pre, n_post, prob, weight, seed)``); no dense
    matrix is ever built. As for :class:`EventLinear`, ``out = x @ W``: bool
    spikes and ``BinaryArray`` run the event-driven product, float input the
    float product, with the gradient of ``x @ W`` with respect to ``x``.

    Two storages hold that connectivity:

    - ``'csr'``: the synapses are stored (:class:`brainevent.CSR`), with one
      trainable weight per synapse (``.weight`` has shape ``(nnz,)``). Memory
      grows with the number of synapses.
    - ``'jitc'``: nothing is stored per synapse
      (:class:`brainevent.JITCScalarR`, ``JITCNormalR``, ``JITCUniformR``);
      every product regenerates the rows it needs from the seed. Memory is
      independent of the number of synapses; only the weight parameters
      (``.weight``: ``(weight,)``, ``(mean, std)`` or ``(low, high)``) can be
      trained.

    Both storages hold the same connectivity for the same arguments: the CSR
    is ``JITC...R(...).tocsr()``.

    The default (``storage=None``) follows ``trainable``: ``'csr'`` when the
    weights are trained per synapse (``trainable=None`` or ``True``, the
    default), ``'jitc'`` for a fixed random projection (``trainable=False``),
    except that ``allow_self_connections=False`` always uses ``'csr'``.

    Parameters
    ----------
    n_pre, n_post : int
        The numbers of input and output neurons.
    prob : float
        The connection probability, in ``[0, 1]`` (default 0.2).
    weight : float, Quantity, Normal or Uniform
        The weight of every synapse (default 0.5), or a distribution the
        weights are drawn from (:class:`Normal`, :class:`Uniform`): drawn once
        and stored with ``'csr'``, regenerated in every product with
        ``'jitc'``. Units are kept; the output then carries them.
    seed : int
        Seed of the connectivity (and of the weights drawn from a distribution).
    storage : {None, 'csr', 'jitc'}
        Where the connectivity lives (see above).
    trainable : bool, optional
        ``True`` (or ``None``, the default, with storage ``'csr'``): one
        stored weight per synapse. ``False``: a fixed projection; with a
        scalar weight, ``'csr'`` then stores it once.
    allow_self_connections : bool
        ``False`` leaves out the pairs ``(i, i)`` (``n_pre == n_post``; CSR
        storage).
    conn_num : float, optional
        Another name for ``prob`` (a probability, not a count: for a fixed
        number of connections see :class:`EventFixedNumConn`).
    conn_weight : optional
        Another name for ``weight``.

    Notes
    -----
    ``.conn`` is the connectivity matrix (``CSR`` or ``JITC...R``),
    ``.storage`` its kind and :meth:`todense` the dense matrix, for checking.
    {gradients}
    Examples
    --------
    >>> import jax.numpy as jnp, brainevent
    >>> layer = brainevent.nn.EventFixedProb(100, 50, prob=0.1, weight=0.5, seed=1)
    >>> layer.storage, layer.weight.shape == (layer.conn.nnz,)
    ('csr', True)
    >>> spikes = jnp.arange(100) % 7 == 0
    >>> bool(jnp.allclose(layer(spikes), spikes.astype(float) @ layer.todense()))
    True
    >>> fixed = brainevent.nn.EventFixedProb(100, 50, prob=0.1, weight=0.5, seed=1,
    ...                                      trainable=False)
    >>> fixed.storage, bool(jnp.array_equal(fixed.todense(), layer.todense()))
    ('jitc', True)
    >>> brainevent.nn.EventFixedProb(100, 50, conn_num=0.1, conn_weight=0.5, seed=1)
    EventFixedProb(n_pre=100, n_post=50, prob=0.1, storage='csr', weight=float32[479])
    """

    _static = ('prob',)
    _shown = ('prob', 'storage')
    prob: float

    def __init__(self, n_pre: int, n_post: int, prob: float = default(0.2),
                 weight=default(0.5), seed: int = 0, *, storage: str | None = None,
                 trainable: bool | None = None, allow_self_connections: bool = True,
                 conn_num: float | None = None, conn_weight=None):
        name = type(self).__name__
        n_pre, n_post = check_count(n_pre, 'n_pre', name), check_count(n_post, 'n_post', name)
        if conn_num is not None and isinstance(conn_num, (numbers.Integral, np.integer)) \
                and not isinstance(conn_num, (bool, np.bool_)):
            raise TypeError(f"{name}: conn_num is the connection probability, a float in "
                            f"[0, 1]; received the int {conn_num!r}. For exactly {conn_num} "
                            f"connections per neuron use EventFixedNumConn(n_pre, n_post, "
                            f"conn_num={conn_num})")
        prob_name = 'prob' if conn_num is None else 'conn_num'
        prob = _probability(one_of(name, 'prob', prob, 'conn_num', conn_num), prob_name, name)
        weight = one_of(name, 'weight', weight, 'conn_weight', conn_weight)
        self_connections = check_self_connections(allow_self_connections, n_pre, n_post, name)
        storage, per_synapse = _storage(storage, trainable, self_connections, name)
        if is_distribution(weight):
            jitc = weight.jitc(n_pre, n_post, prob, seed)
        else:
            weight = with_unit(*_scalar_param(weight, 'weight', name,
                                              ', brainevent.nn.Normal or brainevent.nn.Uniform'))
            jitc = JITCScalarR(n_pre, n_post, prob, weight, seed=seed)
        self.prob = prob
        if storage == 'jitc':
            self.conn = jitc
            return
        conn = jitc.tocsr()
        if not self_connections:
            conn = _without_diagonal(conn)
        if not per_synapse and not is_distribution(weight):
            conn = conn.with_data(weight)  # one weight, stored once
        self.conn = conn

    @property
    def storage(self) -> str:
        """``'csr'`` or ``'jitc'``: where the connectivity lives."""
        return 'jitc' if isinstance(self.conn, JITCMatrix) else 'csr'

    def _weight_repr(self):
        dist = getattr(self.conn, 'dist', None)  # the JITC weight law
        law = {'normal': Normal, 'uniform': Uniform}.get(dist.name if dist else None)
        if law is None or not is_concrete(self.conn.data):
            return super()._weight_repr()
        theta, unit = split_unit(self.conn.data)
        return repr(law(*(with_unit(t, unit) for t in theta)))


# ---------------------------------------------------------------------------
# A fixed number of connections per neuron
# ---------------------------------------------------------------------------

def _conn_num(value, layer: str) -> int:
    hint = (f"; for a connection probability use EventFixedProb(n_pre, n_post, prob={value!r})"
            if isinstance(value, float) and 0 < value < 1 else '')
    return check_count(value, 'conn_num', layer, ' (connections per neuron)', hint)


class FixedNumConn(Layer):
    """Exactly ``conn_num`` connections per neuron; ``out = x @ W`` by the float product.

    With ``fixed='post'`` (the default) each presynaptic neuron has exactly
    ``conn_num`` postsynaptic targets (a fixed out-degree:
    :class:`brainevent.FixedPostNumConn`); with ``fixed='pre'`` each
    postsynaptic neuron has exactly ``conn_num`` presynaptic sources (a fixed
    in-degree: :class:`brainevent.FixedPreNumConn`). The partners are drawn
    uniformly from ``seed``, distinct unless ``replace=True``. Memory and the
    work per spike are ``conn_num`` synapses per neuron of the fixed side.

    ``FixedNumConn`` computes ``x @ W`` with the sparse float product for
    float and bool input alike (rates, currents, spike counts: the values
    count); only a ``BinaryArray`` runs the event-driven product.
    :class:`EventFixedNumConn` is the same layer with bool spikes run
    event-driven.

    Parameters
    ----------
    n_pre, n_post : int
        The numbers of input and output neurons.
    conn_num : int
        Connections per neuron of the fixed side (default 10), at most
        ``n_post`` (``fixed='post'``) or ``n_pre`` (``fixed='pre'``) unless
        ``replace=True`` (one less without self-connections).
    weight : float, array, Quantity, Normal, Uniform or callable
        A scalar (default 0.5), an array of shape ``(n_pre, conn_num)``
        (``fixed='post'``; ``(n_post, conn_num)`` for ``'pre'``: the weight of
        each entry of ``.conn.indices``), or a distribution / function
        ``weight(key, shape)`` drawn once from ``seed``. Units are kept.
    seed : int
        Seed of the connectivity and of drawn weights.
    fixed : {'post', 'pre'}
        Which count is fixed: the targets of each presynaptic neuron
        (``'post'``) or the sources of each postsynaptic neuron (``'pre'``).
    trainable : bool
        ``True`` (default): one stored weight per synapse (``.weight`` has
        the shape of ``.conn.indices``). ``False``: a scalar weight is stored
        once (``.weight`` has shape ``(1,)``).
    allow_self_connections : bool
        ``False`` leaves out the pairs ``(i, i)`` (``n_pre == n_post``).
    replace : bool
        Draw the partners independently (repeats allowed, and then added).
    conn_weight : optional
        Another name for ``weight``.

    Notes
    -----
    ``.conn`` is the connectivity matrix, ``.conn_num`` and ``.fixed`` its
    layout, :meth:`todense` the dense matrix, for checking.
    {gradients}
    Examples
    --------
    >>> import jax.numpy as jnp, brainevent
    >>> layer = brainevent.nn.FixedNumConn(6, 4, conn_num=2, weight=1.0, seed=0)
    >>> (layer.todense() != 0).sum(axis=1)  # two targets per presynaptic neuron
    Array([2, 2, 2, 2, 2, 2], dtype=int32)
    >>> rates = jnp.array([0.5, 0., 0., 0., 0., 2.])  # graded input: the values count
    >>> bool(jnp.allclose(layer(rates), rates @ layer.todense()))
    True
    >>> brainevent.nn.FixedNumConn(6, 4, conn_num=3, fixed='pre', seed=0).conn.indices.shape
    (4, 3)
    """

    event = False
    _shown = ('conn_num', 'fixed')

    def __init__(self, n_pre: int, n_post: int, conn_num: int = 10, weight=default(0.5),
                 seed: int = 0, *, fixed: str = 'post', trainable: bool = True,
                 allow_self_connections: bool = True, replace: bool = False,
                 conn_weight=None):
        name = type(self).__name__
        n_pre, n_post = check_count(n_pre, 'n_pre', name), check_count(n_post, 'n_post', name)
        conn_num = _conn_num(conn_num, name)
        weight = one_of(name, 'weight', weight, 'conn_weight', conn_weight)
        if fixed not in ('post', 'pre'):
            raise ValueError(f"{name}: fixed must be 'post' (conn_num targets per presynaptic "
                             f"neuron) or 'pre' (conn_num sources per postsynaptic neuron); "
                             f"received {fixed!r}")
        self_connections = check_self_connections(allow_self_connections, n_pre, n_post, name)
        replace = check_flag(replace, 'replace', name)
        per_synapse = check_flag(trainable, 'trainable', name)
        rows, side, n = ((n_pre, 'n_post', n_post) if fixed == 'post' else
                         (n_post, 'n_pre', n_pre))
        choices = n if self_connections else n - 1
        if not replace and conn_num > choices:
            what = 'targets of each presynaptic' if fixed == 'post' else \
                'sources of each postsynaptic'
            limit = f"{side}={n}" + ('' if self_connections else ' minus 1 (no self-connections)')
            raise ValueError(f"{name}: conn_num={conn_num} exceeds {limit}, the number of "
                             f"distinct {what} neuron (fixed={fixed!r}); lower conn_num or pass "
                             f"replace=True")
        weight = _stored_weight(weight, (rows, conn_num), seed, name, broadcast=per_synapse)
        cls = FixedPostNumConn if fixed == 'post' else FixedPreNumConn
        self.conn = cls(n_pre, n_post, conn_num, weight, seed,
                        allow_self_connections=self_connections, replace=replace)

    @property
    def conn_num(self) -> int:
        """Connections per neuron of the fixed side."""
        return self.conn.conn_num

    @property
    def fixed(self) -> str:
        """``'post'``: the targets of each presynaptic neuron are fixed; ``'pre'``: the sources."""
        return 'post' if isinstance(self.conn, FixedPostNumConn) else 'pre'



class EventFixedNumConn(FixedNumConn):
    """:class:`FixedNumConn` with bool spikes run event-driven.

    The same connectivity, arguments and storage as :class:`FixedNumConn`
    (``fixed='post'``: each presynaptic neuron has exactly ``conn_num``
    targets; ``fixed='pre'``: each postsynaptic neuron has exactly
    ``conn_num`` sources) and the same result ``out = x @ W``, but bool spikes
    (and ``BinaryArray``) run the event-driven product: work proportional to
    the spikes times ``conn_num`` instead of to every synapse. Float input
    runs the float product in both layers; the gradient with respect to ``x``
    is that of ``x @ W`` (surrogate gradients flow). Use ``EventFixedNumConn``
    between spiking populations.

    Examples
    --------
    >>> import jax.numpy as jnp, brainevent
    >>> layer = brainevent.nn.EventFixedNumConn(6, 4, conn_num=2, conn_weight=1.0, seed=0)
    >>> spikes = jnp.array([True, False, False, False, False, True])
    >>> bool(jnp.allclose(layer(spikes), spikes.astype(float) @ layer.todense()))
    True
    >>> graded = brainevent.nn.FixedNumConn(6, 4, conn_num=2, weight=1.0, seed=0)
    >>> bool(jnp.allclose(layer(spikes), graded(spikes)))
    True
    """

    event = True


for _cls in (EventLinear, EventFixedProb, FixedNumConn):
    _cls.__doc__ = _cls.__doc__.replace('{gradients}', _GRADIENTS)
