"""The product operation every format shares: ``op(weights, *index_arrays, B)``.

One kernel per storage layout computes, with static ``info = MatmulInfo(shape,
transpose, event)`` and ``A`` the ``shape`` matrix described by the weights and
the index arrays::

    transpose=False:  A @ B     B: (n,) or (n, k)   ->  (m,) or (m, k)
    transpose=True:   B @ A     B: (m,) or (k, m)   ->  (n,) or (k, n)

With ``event=True`` the kernel uses ``(B != 0)`` cast to the weight dtype in
place of ``B``. Weights are ``(nnz,)`` (per entry) or ``(1,)`` (homogeneous) for
sparse layouts and ``(m, n)`` for dense ones. The rules below are written once:

* JVP: linear in the weights (same ``event``); the tangent with respect to ``B``
  is the float product (``event=False``), so that the gradient with respect to
  spike values is that of the dense product.
* Transpose: the weight cotangent is a sampled product supplied by the layout;
  the ``B`` cotangent is the same kernel with ``transpose`` flipped.
* Batching: a batch of ``B`` becomes one matrix product; other batched operands
  go through the kernel's sequential loop.
"""

import math
from functools import partial
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.interpreters import ad

from ..backends import XLACustomKernel

__all__ = ['MatmulInfo', 'matmul_kernel', 'event_values', 'PLATFORMS']

PLATFORMS = ('cpu', 'gpu', 'tpu')


class MatmulInfo(NamedTuple):
    shape: tuple[int, int]
    transpose: bool
    event: bool


def event_values(b, event: bool, dtype):
    """``B`` as the kernel uses it: the spike mask, or the values, in ``dtype``."""
    return (b != 0).astype(dtype) if event else b.astype(dtype)


def out_shape(info: MatmulInfo, b_shape) -> tuple[int, ...]:
    m, n = info.shape
    return (m,) + tuple(b_shape[1:]) if not info.transpose else tuple(b_shape[:-1]) + (n,)


def _abstract_eval(w, *rest, info):
    b = rest[-1]
    return [jax.core.ShapedArray(out_shape(info, b.shape), w.dtype)]


def _jvp(kernel, primals, tangents, *, info, backend):
    w, *idx, b = primals
    dw, db = tangents[0], tangents[-1]
    bind = partial(kernel.primitive.bind, backend=backend)
    out, = bind(*primals, info=info)
    terms = []
    if type(dw) is not ad.Zero:
        terms.append(bind(dw, *idx, b, info=info)[0])
    if type(db) is not ad.Zero:
        terms.append(bind(w, *idx, db.astype(w.dtype), info=info._replace(event=False))[0])
    if not terms:
        return [out], [ad.Zero.from_primal_value(out)]
    return [out], [sum(terms[1:], terms[0])]


def _transpose(kernel, weight_ct, cts, w, *rest, info, backend):
    *idx, b = rest
    ct = cts[0]
    nones = [None] * len(idx)
    if ad.is_undefined_primal(w) and ad.is_undefined_primal(b):
        raise ValueError(f"{kernel.name}: the product is not linear in weights and operand jointly")
    if ad.is_undefined_primal(w):
        if type(ct) is ad.Zero:
            return [ad.Zero(w.aval), *nones, None]
        return [weight_ct(ct, *idx, b, info=info, w_shape=w.aval.shape).astype(w.aval.dtype),
                *nones, None]
    if info.event:
        raise ValueError(f"{kernel.name}: an event product is not linear in its spikes; "
                         f"its derivative is taken through the float product")
    if type(ct) is ad.Zero:
        return [None, *nones, ad.Zero(b.aval)]
    flipped = info._replace(transpose=not info.transpose)
    if b.aval.ndim == 1:
        b_ct = kernel.primitive.bind(w, *idx, ct, info=flipped, backend=backend)[0]
    else:
        b_ct = kernel.primitive.bind(w, *idx, ct.T, info=flipped, backend=backend)[0].T
    return [None, *nones, b_ct.astype(b.aval.dtype)]


def _batch(kernel, args, dims, *, info, backend):
    w, *idx, b = args
    if any(d is not None for d in dims[:-1]) or dims[-1] is None:
        return kernel._sequential_batch(args, dims, info=info, backend=backend)
    b = jnp.moveaxis(b, dims[-1], 0)
    bind = partial(kernel.primitive.bind, w, *idx, info=info, backend=backend)
    nb = b.shape[0]
    if not info.transpose:  # B: (batch, n) or (batch, n, k) -> columns of one (n, K) operand
        if b.ndim == 2:
            return bind(b.T), [1]
        k = b.shape[2]
        out, = bind(jnp.transpose(b, (1, 2, 0)).reshape(b.shape[1], k * nb))
        return [out.reshape(out.shape[0], k, nb)], [2]
    if b.ndim == 2:  # B: (batch, m) is already the row-stacked operand
        return bind(b), [0]
    k = b.shape[1]
    out, = bind(b.reshape(nb * k, b.shape[2]))
    return [out.reshape(nb, k, out.shape[-1])], [0]


def matmul_kernel(name: str, jax_impl: Callable, weight_ct: Callable) -> XLACustomKernel:
    """Declare a product kernel with the shared rules and its pure-JAX implementation.

    ``jax_impl(w, *idx, b, info) -> [out]`` is the reference on every platform;
    ``weight_ct(ct, *idx, b, info, w_shape)`` is the cotangent of the weights.
    """
    kernel = XLACustomKernel(name, _abstract_eval)
    kernel.def_kernel('jax', PLATFORMS, jax_impl)
    kernel.def_jvp_rule(partial(_jvp, kernel))
    kernel.def_transpose_rule(partial(_transpose, kernel, weight_ct))
    kernel.def_batching_rule(partial(_batch, kernel))
    return kernel


# ---------------------------------------------------------------------------
# Layouts that store one weight per entry at coordinates (row, col)
# ---------------------------------------------------------------------------

def coordinate_impl(coords: Callable, *args, info: MatmulInfo):
    """Reference product for layouts whose entries have coordinates ``coords(*idx, shape)``."""
    w, *idx, b = args
    row, col = coords(*idx, shape=info.shape)
    m, n = info.shape
    b = event_values(b, info.event, w.dtype)
    w = jnp.broadcast_to(w, row.shape)
    if not info.transpose:  # out[row] += w * B[col]
        vals = b[col] * (w if b.ndim == 1 else w[:, None])
        return [jax.ops.segment_sum(vals, row, num_segments=m)]
    gathered = b[row] if b.ndim == 1 else b[:, row].T  # out[..., col] += w * B[..., row]
    out = jax.ops.segment_sum(gathered * (w if b.ndim == 1 else w[:, None]), col, num_segments=n)
    return [out if b.ndim == 1 else out.T]


def coordinate_weight_ct(coords: Callable, ct, *args, info: MatmulInfo, w_shape):
    """Cotangent of the per-entry weights: ``ct`` and ``B`` sampled at the entries."""
    *idx, b = args
    row, col = coords(*idx, shape=info.shape)
    b = event_values(b, info.event, ct.dtype)
    if not info.transpose:
        g = ct[row] * b[col] if b.ndim == 1 else jnp.sum(ct[row] * b[col], axis=1)
    else:
        g = b[row] * ct[col] if b.ndim == 1 else jnp.sum(b[:, row] * ct[:, col], axis=0)
    return g if g.shape == tuple(w_shape) else jnp.sum(g).reshape(w_shape)


def coordinate_kernel(name: str, coords: Callable) -> XLACustomKernel:
    """A product kernel for a layout described by ``coords(*index_arrays, shape) -> (row, col)``."""
    return matmul_kernel(name, partial(coordinate_impl, coords),
                         partial(coordinate_weight_ct, coords))


# ---------------------------------------------------------------------------
# Indexed events on the left: op(w, *idx, ev_indices, ev_count) = events @ A
# ---------------------------------------------------------------------------
#
# ``ev_indices`` is (cap,) or (batch, cap): the active rows, padded; ``ev_count``
# is (1,) or (batch,): how many entries of each buffer are valid. The result is
# the event product ``mask @ A`` of shape (n,) or (batch, n). The weights are the
# only differentiable input (indices are integers).

def events_mask(ev_indices, ev_count, m: int):
    """The bool mask of shape ``ev_indices.shape[:-1] + (m,)`` the buffers describe."""
    cap = ev_indices.shape[-1]
    count = ev_count.reshape(ev_indices.shape[:-1] + (1,))
    slots = jnp.where(jnp.arange(cap) < count, ev_indices, m)  # padding -> spare column
    flat = slots.reshape(math.prod(ev_indices.shape[:-1]), cap)  # cap may be 0: no -1
    rows = jnp.arange(flat.shape[0])[:, None]
    mask = jnp.zeros((flat.shape[0], m + 1), jnp.bool_).at[rows, flat].set(True)[:, :m]
    return mask.reshape(ev_indices.shape[:-1] + (m,))


def _indexed_abstract_eval(w, *rest, info):
    ev_indices = rest[-2]
    return [jax.core.ShapedArray(ev_indices.shape[:-1] + (info.shape[1],), w.dtype)]


def _indexed_jvp(kernel, primals, tangents, *, info, backend):
    out, = kernel.primitive.bind(*primals, info=info, backend=backend)
    dw = tangents[0]
    if type(dw) is ad.Zero:
        return [out], [ad.Zero.from_primal_value(out)]
    return [out], kernel.primitive.bind(dw, *primals[1:], info=info, backend=backend)


def _indexed_transpose(weight_ct, cts, w, *rest, info, backend):
    *idx, ev_indices, ev_count = rest
    ct = cts[0]
    nones = [None] * (len(rest))
    if type(ct) is ad.Zero:
        return [ad.Zero(w.aval), *nones]
    mask = events_mask(ev_indices, ev_count, info.shape[0])
    return [weight_ct(ct, *idx, mask, info=info, w_shape=w.aval.shape).astype(w.aval.dtype),
            *nones]


def _indexed_batch(kernel, args, dims, *, info, backend):
    w, *idx, ev_indices, ev_count = args
    if any(d is not None for d in dims[:-2]) or dims[-2] is None or dims[-1] is None:
        return kernel._sequential_batch(args, dims, info=info, backend=backend)
    ev_indices = jnp.moveaxis(ev_indices, dims[-2], 0)
    ev_count = jnp.moveaxis(ev_count, dims[-1], 0)
    nb = ev_indices.shape[0]
    flat_indices = ev_indices.reshape(math.prod(ev_indices.shape[:-1]), ev_indices.shape[-1])
    flat_count = ev_count.reshape(-1)
    out, = kernel.primitive.bind(w, *idx, flat_indices, flat_count, info=info, backend=backend)
    return [out.reshape((nb,) + ev_indices.shape[1:-1] + (info.shape[1],))], [0]


def indexed_kernel(name: str, jax_impl: Callable, weight_ct: Callable) -> XLACustomKernel:
    """Declare an indexed-events kernel with the shared rules and its pure-JAX implementation.

    ``weight_ct`` is the cotangent function of the layout's product kernel; it is
    called with the event mask in place of ``B``.
    """
    kernel = XLACustomKernel(name, _indexed_abstract_eval)
    kernel.def_kernel('jax', PLATFORMS, jax_impl)
    kernel.def_jvp_rule(partial(_indexed_jvp, kernel))
    kernel.def_transpose_rule(partial(_indexed_transpose, weight_ct))
    kernel.def_batching_rule(partial(_indexed_batch, kernel))
    return kernel


def masked_impl(product_impl: Callable, *args, info):
    """Reference for indexed events: expand them to the mask and run the event product."""
    *front, ev_indices, ev_count = args
    mask = events_mask(ev_indices, ev_count, info.shape[0])
    return product_impl(*front, mask, info=info)
