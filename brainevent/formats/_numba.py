"""numba bodies of the product kernels (CPU), one factory per storage layout.

Each factory takes the static flags ``(transpose, event, matrix)`` and returns
an ``@njit`` body ``body(w, *index_arrays, b, out) -> status`` with the
semantics of :mod:`brainevent.formats._matmul`. Flags are closure constants, so
numba compiles one specialised loop per combination; dtypes specialise through
numba's own typing. Homogeneous weights (``w.shape == (1,)``) are read as
``w[k * step]`` with ``step = 0``. Event bodies skip inactive spikes, so their
work follows the spikes; index values are checked before every write (status
1 when one is out of range). The bodies run on one thread: numba's parallel
loops inside a cached ``cfunc`` crash when loaded from the cache (seen with
numba 0.68), and the cache is what makes the first call fast.
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..backends._numba_ffi import body_jit, ffi_call, name_of, supports
from ._matmul import out_shape

__all__ = ['csr_body', 'coo_body', 'dense_body', 'csr_indexed_body', 'dense_indexed_body',
           'register_numba']


def csr_body(transpose, event, matrix, regular=False):
    """CSR: row ``i`` holds ``indices[indptr[i]:indptr[i + 1]]``.

    ``regular=True`` serves layouts whose rows all hold ``c`` entries (the
    fixed-degree formats): ``indptr`` is then ``[c, m]`` and row ``i`` holds
    ``indices[i * c:(i + 1) * c]``, with no row pointers to read.
    """
    jit = body_jit(name_of('csr', transpose, event, matrix, regular))
    if transpose and not matrix:  # out[j] += w * b[i]: visit the rows of active spikes only
        @jit
        def body(w, indices, indptr, b, out):
            step = 1 if w.shape[0] > 1 else 0
            n, m = out.shape[0], b.shape[0]
            out[:] = 0
            # one-byte spikes (bool): test eight neurons at once, silent ones are most
            words = m // 8 if b.itemsize == 1 else 0
            packed = b[:words * 8].view(np.uint64) if words else np.zeros(0, np.uint64)
            i = 0
            while i < m:
                if i < words * 8 and packed[i // 8] == 0:
                    i += 8
                    continue
                if b[i] != 0:
                    start = i * indptr[0] if regular else indptr[i]
                    stop = start + indptr[0] if regular else indptr[i + 1]
                    for k in range(start, stop):
                        j = indices[k]
                        if j < 0 or j >= n:
                            return 1
                        out[j] += w[k * step] if event else w[k * step] * b[i]
                i += 1
            return 0
    elif transpose:  # b: (K, m) -> out: (K, n), batch row by batch row
        @jit
        def body(w, indices, indptr, b, out):
            step = 1 if w.shape[0] > 1 else 0
            n = out.shape[1]
            for r in range(b.shape[0]):
                out[r, :] = 0
                for i in range(b.shape[1]):
                    if b[r, i] != 0:
                        start = i * indptr[0] if regular else indptr[i]
                        stop = start + indptr[0] if regular else indptr[i + 1]
                        for k in range(start, stop):
                            j = indices[k]
                            if j < 0 or j >= n:
                                return 1
                            out[r, j] += w[k * step] if event else w[k * step] * b[r, i]
            return 0
    elif not matrix:  # out[i] = sum_k w[k] * b[indices[k]]
        @jit
        def body(w, indices, indptr, b, out):
            step = 1 if w.shape[0] > 1 else 0
            n = b.shape[0]
            for i in range(out.shape[0]):
                out[i] = 0
                acc = out[i]
                start = i * indptr[0] if regular else indptr[i]
                stop = start + indptr[0] if regular else indptr[i + 1]
                for k in range(start, stop):
                    j = indices[k]
                    if j < 0 or j >= n:
                        return 1
                    if event:
                        if b[j] != 0:
                            acc += w[k * step]
                    else:
                        acc += w[k * step] * b[j]
                out[i] = acc
            return 0
    else:  # b: (n, K) -> out: (m, K)
        @jit
        def body(w, indices, indptr, b, out):
            step = 1 if w.shape[0] > 1 else 0
            n = b.shape[0]
            for i in range(out.shape[0]):
                out[i, :] = 0
                start = i * indptr[0] if regular else indptr[i]
                stop = start + indptr[0] if regular else indptr[i + 1]
                for k in range(start, stop):
                    j = indices[k]
                    if j < 0 or j >= n:
                        return 1
                    wk = w[k * step]
                    for c in range(b.shape[1]):
                        if event:
                            if b[j, c] != 0:
                                out[i, c] += wk
                        else:
                            out[i, c] += wk * b[j, c]
            return 0
    return body


def coo_body(transpose, event, matrix):
    """COO: entry ``e`` at ``(row[e], col[e])``; every entry is visited."""
    jit = body_jit(name_of('coo', transpose, event, matrix))
    if not matrix:
        @jit
        def body(w, row, col, b, out):
            step = 1 if w.shape[0] > 1 else 0
            src_n, dst_n = b.shape[0], out.shape[0]
            out[:] = 0
            for e in range(row.shape[0]):
                src, dst = (row[e], col[e]) if transpose else (col[e], row[e])
                if src < 0 or src >= src_n or dst < 0 or dst >= dst_n:
                    return 1
                if event:
                    if b[src] != 0:
                        out[dst] += w[e * step]
                else:
                    out[dst] += w[e * step] * b[src]
            return 0
    else:  # batch axis: rows of b/out when transposed, columns otherwise
        @jit
        def body(w, row, col, b, out):
            step = 1 if w.shape[0] > 1 else 0
            batch = b.shape[0] if transpose else b.shape[1]
            src_n = b.shape[1] if transpose else b.shape[0]
            dst_n = out.shape[1] if transpose else out.shape[0]
            for r in range(batch):
                for d in range(dst_n):
                    if transpose:
                        out[r, d] = 0
                    else:
                        out[d, r] = 0
                for e in range(row.shape[0]):
                    src, dst = (row[e], col[e]) if transpose else (col[e], row[e])
                    if src < 0 or src >= src_n or dst < 0 or dst >= dst_n:
                        return 1
                    v = b[r, src] if transpose else b[src, r]
                    if event:
                        if v != 0:
                            if transpose:
                                out[r, dst] += w[e * step]
                            else:
                                out[dst, r] += w[e * step]
                    elif transpose:
                        out[r, dst] += w[e * step] * v
                    else:
                        out[dst, r] += w[e * step] * v
            return 0
    return body


def dense_body(transpose, event, matrix):
    """Dense weights ``W (m, n)`` with event operands (``event`` is always True here)."""
    jit = body_jit(name_of('dense', transpose, event, matrix))
    if transpose and not matrix:  # b @ W: add the rows of active spikes
        @jit
        def body(w, b, out):
            out[:] = 0
            for i in range(b.shape[0]):
                if b[i] != 0:
                    for j in range(w.shape[1]):
                        out[j] += w[i, j]
            return 0
    elif transpose:
        @jit
        def body(w, b, out):
            for r in range(b.shape[0]):
                out[r, :] = 0
                for i in range(b.shape[1]):
                    if b[r, i] != 0:
                        for j in range(w.shape[1]):
                            out[r, j] += w[i, j]
            return 0
    elif not matrix:  # W @ b: sum the columns of active spikes
        @jit
        def body(w, b, out):
            active = np.flatnonzero(b)
            for i in range(w.shape[0]):
                out[i] = 0
                acc = out[i]
                for t in range(active.shape[0]):
                    acc += w[i, active[t]]
                out[i] = acc
            return 0
    else:
        @jit
        def body(w, b, out):
            for c in range(b.shape[1]):
                active = np.flatnonzero(b[:, c])
                for i in range(w.shape[0]):
                    out[i, c] = 0
                    acc = out[i, c]
                    for t in range(active.shape[0]):
                        acc += w[i, active[t]]
                    out[i, c] = acc
            return 0
    return body


def csr_indexed_body(batch, regular=False):
    """CSR with indexed events on the left: only the stored active rows are visited.

    ``regular`` as in :func:`csr_body`.
    """
    jit = body_jit(name_of('csr_indexed', batch, regular))
    if not batch:
        @jit
        def body(w, indices, indptr, ev, count, out):
            step = 1 if w.shape[0] > 1 else 0
            m = indptr[1] if regular else indptr.shape[0] - 1
            n = out.shape[0]
            out[:] = 0
            for t in range(min(count[0], ev.shape[0])):
                i = ev[t]
                if i < 0 or i >= m:
                    return 1
                start = i * indptr[0] if regular else indptr[i]
                stop = start + indptr[0] if regular else indptr[i + 1]
                for k in range(start, stop):
                    j = indices[k]
                    if j < 0 or j >= n:
                        return 1
                    out[j] += w[k * step]
            return 0
    else:
        @jit
        def body(w, indices, indptr, ev, count, out):
            step = 1 if w.shape[0] > 1 else 0
            m = indptr[1] if regular else indptr.shape[0] - 1
            n = out.shape[1]
            out[:, :] = 0
            for r in range(ev.shape[0]):
                for t in range(min(count[r], ev.shape[1])):
                    i = ev[r, t]
                    if i < 0 or i >= m:
                        return 1
                    start = i * indptr[0] if regular else indptr[i]
                    stop = start + indptr[0] if regular else indptr[i + 1]
                    for k in range(start, stop):
                        j = indices[k]
                        if j < 0 or j >= n:
                            return 1
                        out[r, j] += w[k * step]
            return 0
    return body


def dense_indexed_body(batch):
    """Dense weights with indexed events on the left: add the stored active rows."""
    jit = body_jit(name_of('dense_indexed', batch))
    if not batch:
        @jit
        def body(w, ev, count, out):
            out[:] = 0
            for t in range(min(count[0], ev.shape[0])):
                i = ev[t]
                if i < 0 or i >= w.shape[0]:
                    return 1
                for j in range(w.shape[1]):
                    out[j] += w[i, j]
            return 0
    else:
        @jit
        def body(w, ev, count, out):
            out[:, :] = 0
            for r in range(ev.shape[0]):
                for t in range(min(count[r], ev.shape[1])):
                    i = ev[r, t]
                    if i < 0 or i >= w.shape[0]:
                        return 1
                    for j in range(w.shape[1]):
                        out[r, j] += w[i, j]
            return 0
    return body


def _product_flags(args, info):
    """Flags and output shape of a product kernel call, or None for the fallback."""
    if args[0].ndim == 2 and not info.event:  # dense float products: XLA's matmul is best
        return None
    b = args[-1]
    return (info.transpose, info.event, b.ndim == 2), out_shape(info, b.shape)


def _indexed_flags(args, info):
    ev = args[-2]
    return (ev.ndim == 2,), ev.shape[:-1] + (info.shape[1],)


def _numba_impl(factory, fallback, flags_of, regular, *args, info):
    """The numba implementation of a kernel; other dtypes use ``fallback``."""
    plan = flags_of(args, info) if supports(*(a.dtype for a in args)) else None
    if plan is None:
        return fallback(*args, info=info)
    flags, shape = plan
    if regular:  # (w, indices (m, c), ...) -> (w, indices.ravel(), [c, m], ...)
        w, indices, *rest = args
        pointer = jnp.array(indices.shape[::-1], indices.dtype)
        args, flags = (w, indices.reshape(-1), pointer, *rest), (*flags, True)
    return ffi_call(factory, flags, list(args), [jax.ShapeDtypeStruct(shape, args[0].dtype)])


def register_numba(kernel, factory, regular: bool = False) -> None:
    """Make ``factory``'s bodies the default CPU implementation of ``kernel``.

    Dtypes the bridge cannot carry run the kernel's pure-JAX implementation.
    ``regular=True``: the kernel's index operand is an ``(m, c)`` array of rows
    of equal length, run by the CSR bodies' regular variant.
    """
    fallback = kernel.implementation('jax', 'cpu')
    indexed = factory in (csr_indexed_body, dense_indexed_body)
    flags_of = _indexed_flags if indexed else _product_flags
    kernel.def_kernel('numba', 'cpu', partial(_numba_impl, factory, fallback, flags_of, regular))
