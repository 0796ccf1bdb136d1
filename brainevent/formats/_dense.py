"""Event products with dense weights: ``spikes @ W`` and ``W @ spikes``."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..events._binary import BinaryArray
from ..events._dispatch import register_matmul
from ..events._indexed import IndexedBinary1d, IndexedBinary2d
from ._base import _numeric, product
from ..backends._numba_ffi import numba_available
from ._matmul import event_values, indexed_kernel, masked_impl, matmul_kernel

__all__ = ['dense_matmul']


def _dense_impl(w, b, *, info):
    b = event_values(b, info.event, w.dtype)
    return [b @ w if info.transpose else w @ b]


def _dense_weight_ct(ct, b, *, info, w_shape):
    b = event_values(b, info.event, ct.dtype)
    if info.transpose:  # out = B @ W
        return jnp.outer(b, ct) if b.ndim == 1 else b.T @ ct
    return jnp.outer(ct, b) if b.ndim == 1 else ct @ b.T


dense_matmul = matmul_kernel('dense_matmul', _dense_impl, _dense_weight_ct)
dense_indexed_matmul = indexed_kernel('dense_indexed_matmul', partial(masked_impl, _dense_impl),
                                      _dense_weight_ct)


def _call(w, b, info, backend):
    return dense_matmul.bind(w, b, info=info, backend=backend)[0]


def _indexed_call(w, ev_indices, ev_count, info, backend):
    return dense_indexed_matmul.bind(w, ev_indices, ev_count, info=info, backend=backend)[0]


def _weights(w):
    values, _ = _numeric(w, 'the dense weights')
    if values.ndim != 2:
        raise ValueError(f"matmul: event arrays multiply 2-D weights; received shape "
                         f"{values.shape}")
    return values.shape


def _events_at_left(events, w, backend=None):
    return product(w, events, shape=_weights(w), transpose=True, call=_call, backend=backend,
                   indexed_call=_indexed_call)


def _events_at_right(w, events, backend=None):
    return product(w, events, shape=_weights(w), transpose=False, call=_call, backend=backend)


for _event in (BinaryArray, IndexedBinary1d, IndexedBinary2d):
    for _dense in (jax.Array, np.ndarray):
        register_matmul(_event, _dense, _events_at_left,
                        dense_matmul if _event is BinaryArray else dense_indexed_matmul)
        register_matmul(_dense, _event, _events_at_right, dense_matmul)

if numba_available:
    from ._numba import dense_body, dense_indexed_body, register_numba
    register_numba(dense_matmul, dense_body)
    register_numba(dense_indexed_matmul, dense_indexed_body)
