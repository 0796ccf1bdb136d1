"""The double-dispatch registry behind ``a @ b``.

Every product the package supports is one entry ``(LeftType, RightType) ->
function``, registered by the module that owns it (a format registers its own
products at the bottom of its module). Lookup walks the method resolution order
of both operand types, so a subclass inherits its base class's entries. Plain
arrays are looked up by kind: every JAX array (tracers included) as
``jax.Array``, every numpy array as ``numpy.ndarray``; a brainunit Quantity by
the kind of its mantissa.
"""

from typing import Callable, NamedTuple

import brainunit as u
import jax
import numpy as np

from .._config import default_platform

__all__ = ['register_matmul', 'matmul', 'lookup', 'kernels', 'KernelTable', 'MatmulEntry']


class MatmulEntry(NamedTuple):
    left: type
    right: type
    function: Callable
    kernel: object  # the XLACustomKernel doing the work, or None


_TABLE: dict[tuple[type, type], MatmulEntry] = {}


def register_matmul(left: type, right: type, function: Callable, kernel=None) -> None:
    """Register ``function(a, b)`` as the product ``a @ b`` for these operand types."""
    _TABLE[(left, right)] = MatmulEntry(left, right, function, kernel)


def operand_kind(x) -> type:
    """The type under which ``x`` is looked up in the table."""
    if isinstance(x, u.Quantity):
        return operand_kind(x.mantissa)
    if isinstance(x, jax.Array):
        return jax.Array
    if isinstance(x, np.ndarray):
        return np.ndarray
    return type(x)


def lookup(a, b) -> MatmulEntry | None:
    """The entry for ``a @ b``, or ``None``."""
    for left in operand_kind(a).__mro__:
        for right in operand_kind(b).__mro__:
            entry = _TABLE.get((left, right))
            if entry is not None:
                return entry
    return None


def _name(t: type) -> str:
    if t is jax.Array:
        return 'jax.Array'
    if t is np.ndarray:
        return 'numpy.ndarray'
    return t.__name__


def no_entry_error(a, b) -> TypeError:
    ka, kb = operand_kind(a), operand_kind(b)
    related = sorted(f"{_name(e.left)} @ {_name(e.right)}" for e in _TABLE.values()
                     if issubclass(ka, e.left) or issubclass(kb, e.right))
    hint = ''
    import scipy.sparse as sp
    if sp.issparse(a) or sp.issparse(b):
        hint = ' Convert scipy.sparse operands first, e.g. brainevent.CSR(s).'
    return TypeError(f"no product is registered for {_name(ka)} @ {_name(kb)}; registered "
                     f"products with either operand: {related or 'none'}. "
                     f"brainevent.kernels() lists the whole table.{hint}")


def matmul(a, b, *, backend: str | None = None):
    """``a @ b`` through the registry, optionally on a chosen ``backend``.

    ``backend`` (``'numba'``, ``'jax'`` ...) overrides the matrix's and the
    global choice for this call; an unknown or unavailable name raises a
    ``ValueError`` listing the available ones. An unregistered pair raises
    ``TypeError``.

    Examples
    --------
    >>> import jax.numpy as jnp, brainevent
    >>> w = brainevent.CSR(jnp.eye(3))
    >>> brainevent.matmul(brainevent.BinaryArray(jnp.array([1., 0., 1.])), w, backend='jax')
    Array([1., 0., 1.], dtype=float32)
    """
    entry = lookup(a, b)
    if entry is None:
        raise no_entry_error(a, b)
    return entry.function(a, b) if backend is None else entry.function(a, b, backend=backend)


class KernelTable(list):
    """Rows of the product table; ``str()`` renders a markdown table."""

    def __str__(self):
        header = ['left', 'right', 'kernel', f'backends ({default_platform()})']
        rows = [[r.left, r.right, r.kernel, ', '.join(r.backends) or '-'] for r in self]
        widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
                  for i, h in enumerate(header)]

        def line(cells):
            return '| ' + ' | '.join(c.ljust(w) for c, w in zip(cells, widths)) + ' |'

        return '\n'.join([line(header), '|' + '|'.join('-' * (w + 2) for w in widths) + '|',
                          *(line(r) for r in rows)])


class KernelRow(NamedTuple):
    left: str
    right: str
    kernel: str
    backends: tuple[str, ...]


def kernels(platform: str | None = None) -> KernelTable:
    """List every registered product: operand types, kernel and its backends.

    Examples
    --------
    >>> import brainevent
    >>> table = brainevent.kernels()
    >>> ('BinaryArray', 'CSR') in {(row.left, row.right) for row in table}
    True
    """
    rows = []
    for entry in _TABLE.values():
        kernel = entry.kernel
        rows.append(KernelRow(_name(entry.left), _name(entry.right),
                              getattr(kernel, 'name', '-'),
                              tuple(kernel.backends(platform)) if kernel is not None else ()))
    return KernelTable(sorted(rows, key=lambda r: (r.right, r.left)))


def _known(x) -> bool:
    """Operands whose products this registry decides (others may define ``__rmatmul__``)."""
    import scipy.sparse as sp
    return (isinstance(x, MatmulOperators) or operand_kind(x) in (jax.Array, np.ndarray)
            or sp.issparse(x))


class MatmulOperators:
    """``@`` through the registry; inherited by the event base and the format base only."""

    __array_ufunc__ = None  # numpy defers ``ndarray @ self`` to ``__rmatmul__``

    def __matmul__(self, other):
        entry = lookup(self, other)
        if entry is not None:
            return entry.function(self, other)
        if _known(other):
            raise no_entry_error(self, other)
        return NotImplemented

    def __rmatmul__(self, other):
        entry = lookup(other, self)
        if entry is not None:
            return entry.function(other, self)
        if _known(other):
            raise no_entry_error(other, self)
        return NotImplemented
