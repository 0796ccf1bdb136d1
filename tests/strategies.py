"""Hypothesis strategies and dense references shared by the test modules."""

import contextlib
from typing import NamedTuple

import jax
import numpy as np
from hypothesis import strategies as st

import brainevent as be

FORMATS = [be.COO, be.CSR, be.CSC]  # formats that store their entries (built from COO)
# formats regenerated from (prob, seed, theta): built from a Case's shape, density and data
JITC_FORMATS = [be.JITCScalarR, be.JITCScalarC, be.JITCNormalR, be.JITCNormalC,
                be.JITCUniformR, be.JITCUniformC]
# formats with a fixed number of entries per row (FixedPost) or column (FixedPre): built from
# a Case's shape and data (see FixedBuilt in test_products.py)
FIXED_FORMATS = [be.FixedPostNumConn, be.FixedPreNumConn]
DTYPES = [np.float32, np.float64]


class Case(NamedTuple):
    """A sparse matrix as raw COO entries (duplicates allowed) and its dense value."""
    shape: tuple
    row: np.ndarray
    col: np.ndarray
    data: np.ndarray      # (nnz,), or (1,) when homogeneous
    dense: np.ndarray

    def coo(self):
        return be.COO((self.data if self.data.size != 1 else self.data[0],
                       (self.row, self.col)), shape=self.shape)

    def build(self, cls):
        return cls(self.coo())


def precision(dtype):
    """Context in which ``dtype`` exists in JAX: float64 needs x64, enabled only there."""
    if np.dtype(dtype) in (np.float64, np.int64):
        return jax.enable_x64(True)
    return contextlib.nullcontext()


def dense_of(shape, row, col, data):
    dense = np.zeros(shape, data.dtype)
    np.add.at(dense, (row, col), np.broadcast_to(data, row.shape))
    return dense


@st.composite
def cases(draw, max_dim=9, dtypes=DTYPES, allow_homogeneous=True, allow_duplicates=True):
    """Random sparse matrices: 0xn and 1x1 shapes, empty rows/columns, duplicates."""
    m = draw(st.integers(0, max_dim))
    n = draw(st.integers(0, max_dim))
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    cells = m * n
    nnz = draw(st.integers(0, min(cells, 3 * max_dim))) if cells else 0
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31)))
    flat = rng.choice(cells, size=nnz, replace=False) if nnz else np.zeros(0, int)
    if allow_duplicates and nnz and draw(st.booleans()):
        flat = np.concatenate([flat, rng.choice(flat, size=draw(st.integers(1, nnz)))])
    rng.shuffle(flat)
    row, col = (flat // n).astype(np.int32) if n else flat.astype(np.int32), \
        (flat % n).astype(np.int32) if n else flat.astype(np.int32)
    if allow_homogeneous and draw(st.booleans()) and row.size > 1:
        data = np.array([rng.uniform(-2, 2)], dtype)
    else:
        data = rng.uniform(-2, 2, size=row.size).astype(dtype)
    return Case((m, n), row, col, data, dense_of((m, n), row, col, data))


@st.composite
def jitc_cases(draw, max_dim=9, dtypes=DTYPES):
    """Cases to derive JITC matrices from (they take the shape, density and data).

    At least one row and column; density 1/2, 0, 1 or any; data as in
    :func:`cases` (homogeneous or not). Drawn so that hypothesis' simplest
    example, which it runs first, is a ``max_dim x max_dim`` matrix of density
    1/2 with heterogeneous data, not an empty 1x1 (JITC tests run few examples).
    """
    m = max_dim + 1 - draw(st.integers(1, max_dim))
    n = max_dim + 1 - draw(st.integers(1, max_dim))
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    cells = m * n
    nnz = draw(st.sampled_from([cells // 2, 0, cells]) | st.integers(0, cells))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31)))
    flat = rng.choice(cells, size=nnz, replace=False)
    row, col = (flat // n).astype(np.int32), (flat % n).astype(np.int32)
    homogeneous = draw(st.booleans()) and nnz > 1
    data = rng.uniform(-2, 2, size=1 if homogeneous else nnz).astype(dtype)
    return Case((m, n), row, col, data, dense_of((m, n), row, col, data))


def spikes(rng, shape, kind):
    """Spike arrays: kind in 'bool', 'float', 'zeros', 'ones' (float 0/1 unless 'bool')."""
    if kind == 'zeros':
        return np.zeros(shape, np.float32)
    if kind == 'ones':
        return np.ones(shape, np.float32)
    s = rng.random(shape) < 0.4
    return s if kind == 'bool' else s.astype(np.float32)
