"""Sparse formats; each module owns its class, constructors and kernel table."""

from ._base import SparseMatrix as SparseMatrix
from ._coo import (COO as COO, update_coo_on_binary_post as update_coo_on_binary_post,
                   update_coo_on_binary_pre as update_coo_on_binary_pre)
from ._csr import (CSC as CSC, CSR as CSR,
                   update_csc_on_binary_post as update_csc_on_binary_post,
                   update_csc_on_binary_pre as update_csc_on_binary_pre,
                   update_csr_on_binary_post as update_csr_on_binary_post,
                   update_csr_on_binary_pre as update_csr_on_binary_pre)
from ._fixed import FixedPostNumConn as FixedPostNumConn, FixedPreNumConn as FixedPreNumConn
from ._jitc import (JITCNormalC as JITCNormalC, JITCNormalR as JITCNormalR,
                     JITCScalarC as JITCScalarC, JITCScalarR as JITCScalarR,
                     JITCUniformC as JITCUniformC, JITCUniformR as JITCUniformR,
                     JITCMatrix as JITCMatrix)
from ._dense import dense_matmul as dense_matmul
from ._functions import (coo2csr as coo2csr, hstack as hstack, load_npz as load_npz,
                         random as random, save_npz as save_npz, vstack as vstack)
from ._plasticity import (update_dense_on_binary_post as update_dense_on_binary_post,
                          update_dense_on_binary_pre as update_dense_on_binary_pre,
                          update_on_binary_post as update_on_binary_post,
                          update_on_binary_pre as update_on_binary_pre)
