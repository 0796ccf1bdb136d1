"""Module functions mirroring scipy.sparse: stacking, random matrices, npz files."""

import brainunit as u
import jax.numpy as jnp
import numpy as np

from .._misc import as_index_array, check_items, check_shape, split_unit, type_name, with_unit
from ._base import FORMATS, SparseMatrix, _float_dtype
from ._coo import COO
from ._csr import CSR

__all__ = ['coo2csr', 'hstack', 'vstack', 'random', 'save_npz', 'load_npz']


def coo2csr(row_or_coo, col=None, data=None, *, shape=None) -> CSR:
    """Build a CSR from coordinates, e.g. the (pre, post) pairs of a connection list.

    Accepts a :class:`COO`, or ``row`` and ``col`` arrays with ``data`` (per
    entry or a scalar; default 1.0) and ``shape``. Duplicates are kept (summed
    by every product).

    Examples
    --------
    >>> import jax.numpy as jnp, brainevent
    >>> pre, post = jnp.array([2, 0, 0]), jnp.array([1, 1, 0])
    >>> w = brainevent.coo2csr(pre, post, 0.5, shape=(3, 2))
    >>> w.indptr
    Array([0, 2, 2, 3], dtype=int32)
    """
    if isinstance(row_or_coo, COO):
        if col is not None or data is not None:
            raise TypeError("coo2csr(coo) takes no col or data")
        return CSR.fromcoo(row_or_coo)
    if col is None:
        raise TypeError(f"coo2csr takes a COO, or row and col arrays; received "
                        f"{type_name(row_or_coo)} alone")
    row = as_index_array(row_or_coo, 'row')
    data = 1.0 if data is None else data
    return CSR.fromcoo(COO((data, (row, col)), shape=shape))


def _stack(blocks, axis: int, format, dtype, fname):
    blocks = check_items(blocks, SparseMatrix, fname, 'block')
    other = 1 - axis
    for i, b in enumerate(blocks):
        if b.shape[other] != blocks[0].shape[other]:
            raise ValueError(f"{fname}: blocks[{i}] has shape {b.shape}; every block needs "
                             f"{blocks[0].shape[other]} {('rows', 'columns')[other]}")
    coos = [b.tocoo() for b in blocks]
    offsets = np.cumsum([0] + [b.shape[axis] for b in blocks])
    rows, cols = [], []
    for coo, off in zip(coos, offsets):
        rows.append(coo.row + (off if axis == 0 else 0))
        cols.append(coo.col + (off if axis == 1 else 0))
    data = u.math.concatenate([c.full_data() for c in coos])
    shape = [blocks[0].shape[0], blocks[0].shape[1]]
    shape[axis] = int(offsets[-1])
    result = COO((data, (jnp.concatenate(rows), jnp.concatenate(cols))), shape=tuple(shape))
    if format is None:
        kinds = {b.format for b in blocks}
        format = kinds.pop() if len(kinds) == 1 else 'coo'
    result = result.asformat(format)
    return result if dtype is None else result.astype(dtype)


def hstack(blocks, format: str | None = None, dtype=None):
    """Stack sparse matrices side by side (same number of rows).

    The result has ``format`` (default: the blocks' format when they share
    one, else COO). Weight units must agree.

    Examples
    --------
    >>> import jax.numpy as jnp, brainevent
    >>> a = brainevent.CSR(jnp.eye(2))
    >>> brainevent.hstack([a, a]).shape
    (2, 4)
    """
    return _stack(blocks, 1, format, dtype, 'hstack')


def vstack(blocks, format: str | None = None, dtype=None):
    """Stack sparse matrices on top of each other (same number of columns).

    E/I networks are assembled this way: ``vstack([w_exc, w_inh])`` has the
    excitatory presynaptic rows first.

    Examples
    --------
    >>> import jax.numpy as jnp, brainevent
    >>> w_exc = brainevent.CSR(jnp.ones((3, 2)))
    >>> w_inh = brainevent.CSR(-jnp.ones((1, 2)))
    >>> brainevent.vstack([w_exc, w_inh]).todense()[-1]
    Array([-1., -1.], dtype=float32)
    """
    return _stack(blocks, 0, format, dtype, 'vstack')


def random(m: int, n: int, density: float = 0.01, format: str = 'coo', dtype=None,
           seed=None, data_sampler=None):
    """A random sparse matrix, as ``scipy.sparse.random_array`` (eager).

    Exactly ``round(density * m * n)`` distinct entries, uniform in [0, 1)
    unless ``data_sampler(size)`` is given; ``seed`` makes it reproducible.

    Examples
    --------
    >>> import brainevent
    >>> w = brainevent.random(100, 50, density=0.1, format='csr', seed=0)
    >>> w.nnz
    500
    """
    import scipy.sparse as sp
    m, n = check_shape((m, n), '(m, n)')
    if isinstance(density, bool) or not isinstance(density, (int, float, np.integer, np.floating)):
        raise TypeError(f"density must be a number in [0, 1]; received {density!r}")
    if not 0 <= density <= 1:
        raise ValueError(f"density must be in [0, 1]; received {density!r}")
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; expected one of {sorted(FORMATS)}")
    dtype = np.dtype(dtype or _float_dtype())
    s = sp.random_array((m, n), density=density, format='coo', rng=seed,
                        data_sampler=data_sampler, dtype=np.float64)
    return COO(s).astype(dtype).asformat(format)


_UNIT_KEY = 'brainevent_unit'
_HOMOGENEOUS_KEY = 'brainevent_homogeneous'
_CLASS_KEY = 'brainevent_format'  # the class when 'format' names the layout scipy reads


def save_npz(file, matrix: SparseMatrix, compressed: bool = True) -> None:
    """Save to ``.npz``: scipy's layout, so ``scipy.sparse.load_npz`` reads it too.

    Homogeneous weights are written per entry (scipy needs them) and restored
    as a scalar by :func:`load_npz`; a weight unit is stored beside the arrays.
    The fixed-degree formats are written as the CSR of their entries (scipy
    reads a CSR) and restored as their own class by :func:`load_npz`.

    Examples
    --------
    >>> import tempfile, os, jax.numpy as jnp, brainevent
    >>> path = os.path.join(tempfile.mkdtemp(), 'w.npz')
    >>> brainevent.save_npz(path, brainevent.CSR(jnp.eye(3)))
    >>> brainevent.load_npz(path).nnz
    3
    """
    if not isinstance(matrix, SparseMatrix):
        raise TypeError(f"save_npz saves a brainevent sparse matrix; received "
                        f"{type_name(matrix)}")
    if matrix.format not in FORMATS:
        raise TypeError(f"save_npz saves the formats {sorted(FORMATS)}; a {type(matrix).__name__} "
                        f"stores no entries of its own: save m.tocsr(), or its parameters")
    # another format (fixed-degree) is written as the CSR of its entries, which scipy reads
    stored = matrix if matrix.format in ('coo', 'csr', 'csc') else matrix.tocsr()
    w, unit = split_unit(stored.full_data())
    arrays = {'format': np.array(stored.format.encode('ascii')),
              'shape': np.array(matrix.shape), 'data': np.asarray(w),
              _HOMOGENEOUS_KEY: np.array(matrix.is_homogeneous)}
    if stored is not matrix:
        arrays[_CLASS_KEY] = np.array(matrix.format.encode('ascii'))
    if stored.format == 'coo':
        arrays.update(row=np.asarray(stored.row), col=np.asarray(stored.col))
    else:
        arrays.update(indices=np.asarray(stored.indices), indptr=np.asarray(stored.indptr))
    if not unit.is_unitless:
        arrays[_UNIT_KEY] = np.array(str(unit))
    (np.savez_compressed if compressed else np.savez)(file, **arrays)


def _parse_unit(text: str):
    try:
        return u.parse_unit(text)
    except Exception as err:
        raise ValueError(f"cannot read the stored unit {text!r}: {err}") from None


def _decode(entry) -> str:
    value = entry.item()
    return value.decode('ascii') if isinstance(value, bytes) else str(value)


def load_npz(file) -> SparseMatrix:
    """Load a matrix written by :func:`save_npz` or by ``scipy.sparse.save_npz``.

    Returns the class the file names (COO, CSR, CSC, FixedPostNumConn or
    FixedPreNumConn), with the stored unit.

    Examples
    --------
    >>> import tempfile, os, scipy.sparse as sp, brainevent
    >>> path = os.path.join(tempfile.mkdtemp(), 'from_scipy.npz')
    >>> sp.save_npz(path, sp.eye(3, format='csc'))
    >>> brainevent.load_npz(path)
    CSC(shape=(3, 3), nnz=3, dtype=float32)
    """
    with np.load(file, allow_pickle=False) as f:
        if 'format' not in f:
            raise ValueError(f"{file!r} holds no sparse matrix (no 'format' entry)")
        fmt = _decode(f['format'])
        if fmt not in FORMATS:
            raise ValueError(f"{file!r} holds a {fmt!r} matrix; readable formats: "
                             f"{sorted(FORMATS)}")
        shape = tuple(int(d) for d in f['shape'])
        data = jnp.asarray(f['data'])
        if _HOMOGENEOUS_KEY in f and bool(f[_HOMOGENEOUS_KEY]) and data.size:
            data = data[:1]
        if _UNIT_KEY in f:
            data = with_unit(data, _parse_unit(str(f[_UNIT_KEY])))
        if fmt == 'coo':
            if 'row' in f:
                row, col = f['row'], f['col']
            else:
                row, col = f['coords']
            return COO((data, (row, col)), shape=shape)
        matrix = FORMATS[fmt]((data, f['indices'], f['indptr']), shape=shape)
        if _CLASS_KEY in f:  # a format written as the CSR of its entries
            return FORMATS[_decode(f[_CLASS_KEY])](matrix)
        return matrix
