"""Sparse formats; each module owns its class, constructors and kernel table."""

from ._base import SparseMatrix as SparseMatrix
from ._coo import COO as COO
from ._csr import CSC as CSC, CSR as CSR
from ._jitc import (JITCNormalC as JITCNormalC, JITCNormalR as JITCNormalR,
                     JITCScalarC as JITCScalarC, JITCScalarR as JITCScalarR,
                     JITCUniformC as JITCUniformC, JITCUniformR as JITCUniformR,
                     JITCMatrix as JITCMatrix)
from ._dense import dense_matmul as dense_matmul
from ._functions import (coo2csr as coo2csr, hstack as hstack, load_npz as load_npz,
                         random as random, save_npz as save_npz, vstack as vstack)
